// Package mail delivers the outbox: messages written in the transaction of
// the change that caused them (an invitation) and sent afterwards, by SMTP
// when configured, else as .eml files for a developer to open.
package mail

import (
	"context"
	"fmt"
	"net/mail"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/store"
)

// SMTP is an SMTP relay; Addr empty means none.
type SMTP struct {
	Addr     string // host:port
	From     string
	Username string
	Password string
}

// Sender delivers outbox messages.
type Sender struct {
	DB   *bun.DB
	SMTP SMTP
	// Dir receives one .eml file per message when there is no relay.
	Dir string
	Log zerolog.Logger
	// Every is the polling interval (default 1s).
	Every time.Duration
}

// maxAttempts bounds deliveries of one message; after that it stays in the
// outbox with its last error for an operator.
const maxAttempts = 10

// Run delivers until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	every := s.Every
	if every == 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.DeliverPending(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error().Err(err).Msg("outbox delivery")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverPending delivers what is waiting, a batch at a time; replicas skip
// each other's rows. It returns how many messages were sent.
func (s *Sender) DeliverPending(ctx context.Context) (int, error) {
	sent := 0
	for {
		n, err := s.deliverBatch(ctx)
		sent += n
		if err != nil || n == 0 {
			return sent, err
		}
	}
}

func (s *Sender) deliverBatch(ctx context.Context) (int, error) {
	sent := 0
	err := s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var msgs []store.OutboxMessage
		if err := tx.NewSelect().Model(&msgs).
			Where("sent_at IS NULL AND attempts < ?", maxAttempts).
			OrderExpr("id").Limit(20).For("UPDATE SKIP LOCKED").Scan(ctx); err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		for _, m := range msgs {
			q := tx.NewUpdate().Model((*store.OutboxMessage)(nil)).Where("id = ?", m.ID)
			// A message done with (sent, or given up after its last attempt)
			// keeps only its redacted body: no secret stays readable.
			if err := s.deliver(m); err != nil {
				last := m.Attempts+1 >= maxAttempts
				s.Log.Warn().Err(err).Int64("outbox_id", m.ID).Bool("given_up", last).Msg("mail not delivered")
				q = q.Set("attempts = attempts + 1, last_error = ?", err.Error())
				if last {
					q = q.Set("body = body_redacted")
				}
			} else {
				sent++
				q = q.Set("attempts = attempts + 1, sent_at = now(), last_error = '', body = body_redacted")
			}
			if _, err := q.Exec(ctx); err != nil {
				return fmt.Errorf("update outbox %d: %w", m.ID, err)
			}
		}
		return nil
	})
	return sent, err
}

// defaultFrom is the sender when CP_SMTP_FROM is not set.
var defaultFrom = mail.Address{Name: "IntelliAuth", Address: "no-reply@intelliauth.localhost"}

func (s *Sender) deliver(m store.OutboxMessage) error {
	from := defaultFrom
	if s.SMTP.From != "" {
		a, err := mail.ParseAddress(s.SMTP.From)
		if err != nil {
			return fmt.Errorf("sender address: %w", err)
		}
		from = *a
	}
	msg, err := Message(from, m)
	if err != nil {
		return err
	}
	if s.SMTP.Addr != "" {
		var auth smtp.Auth
		if s.SMTP.Username != "" {
			host, _, _ := strings.Cut(s.SMTP.Addr, ":")
			auth = smtp.PlainAuth("", s.SMTP.Username, s.SMTP.Password, host)
		}
		return smtp.SendMail(s.SMTP.Addr, auth, from.Address, []string{m.Recipient}, msg)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(s.Dir, fmt.Sprintf("%06d-%s.eml", m.ID, safeName(m.Recipient)))
	if err := os.WriteFile(path, msg, 0o600); err != nil {
		return err
	}
	// The path, not the message: the message holds a secret.
	s.Log.Info().Str("to", m.Recipient).Str("file", path).Msg("mail written (no SMTP relay configured)")
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}
