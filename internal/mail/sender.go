// Package mail delivers the outbox: messages written in the transaction of
// the change that caused them (an invitation) and sent afterwards, by SMTP
// when configured, else as .eml files for a developer to open.
package mail

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
	gomail "github.com/wneessen/go-mail"

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

// batchSize is how many messages a sender claims at once.
const batchSize = 20

// The bounds of a delivery; variables only for the tests.
var (
	// commandTimeout bounds the dial with the greeting, STARTTLS and AUTH,
	// then each SMTP command: a relay that stops answering fails the
	// attempt.
	commandTimeout = 10 * time.Second
	// sendTimeout bounds one message, every command together.
	sendTimeout = time.Minute
	// lease is how long a claimed batch is its sender's alone. A sender
	// starts no message with less than sendTimeout of it left, so what it
	// claimed is done or given back before another sender may take it; a
	// sender that dies leaves its claim to expire.
	lease = 5 * time.Minute
	// markTimeout bounds recording a delivery's outcome, which is done even
	// once the sender's context has ended.
	markTimeout = 5 * time.Second
)

// retryAfter is the wait before the next attempt of a message that failed
// its attempts-th: 30s, doubling up to an hour.
func retryAfter(attempts int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempts && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// Run delivers until ctx ends; a delivery under way when it does is
// interrupted and its message given back to the outbox.
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
		tried, n, err := s.deliverBatch(ctx)
		sent += n
		if err != nil || tried == 0 {
			return sent, err
		}
	}
}

// deliverBatch claims a batch in a transaction of its own, sends its
// messages with no transaction open, and records each outcome in a
// statement of its own: a relay that stalls holds no row and no
// connection of the pool. It returns how many messages it tried.
func (s *Sender) deliverBatch(ctx context.Context) (tried, sent int, err error) {
	start := time.Now() // before the claim: the lease ends no earlier than start+lease
	msgs, err := s.claim(ctx)
	if err != nil || len(msgs) == 0 {
		return 0, 0, err
	}
	for i, m := range msgs {
		if ctx.Err() != nil || time.Until(start.Add(lease)) < sendTimeout {
			s.release(ctx, msgs[i:])
			return i, sent, ctx.Err()
		}
		mctx, cancel := context.WithTimeout(ctx, sendTimeout)
		err := s.deliver(mctx, m)
		cancel()
		if err != nil && ctx.Err() != nil {
			// Interrupted, not failed: the message goes back as it was,
			// to be sent again (perhaps twice, never not at all).
			s.release(ctx, msgs[i:])
			return i, sent, ctx.Err()
		}
		if err == nil {
			sent++
		}
		if err := s.record(ctx, m, err); err != nil {
			// Left claimed: it is sent again once the lease expires.
			return i + 1, sent, err
		}
	}
	return len(msgs), sent, nil
}

// claim takes up to batchSize messages due for an attempt and moves their
// next attempt past the lease; the transaction is the statement.
func (s *Sender) claim(ctx context.Context) ([]store.OutboxMessage, error) {
	var msgs []store.OutboxMessage
	err := s.DB.NewRaw(`UPDATE outbox SET next_attempt_at = now() + ? * interval '1 millisecond'
		WHERE id IN (SELECT id FROM outbox
			WHERE sent_at IS NULL AND attempts < ? AND (next_attempt_at IS NULL OR next_attempt_at <= now())
			ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
		RETURNING id, recipient, subject, body, body_redacted, created_at, sent_at, attempts, last_error`,
		lease.Milliseconds(), maxAttempts, batchSize).Scan(ctx, &msgs)
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	slices.SortFunc(msgs, func(a, b store.OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
	return msgs, nil
}

// markContext is for recording an outcome: it outlives ctx, briefly.
func markContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
}

// record writes the outcome of an attempt at m: sent, or failed with err
// and due again after its back-off. A message done with (sent, or given up
// after its last attempt) keeps only its redacted body: no secret stays
// readable.
func (s *Sender) record(ctx context.Context, m store.OutboxMessage, err error) error {
	ctx, cancel := markContext(ctx)
	defer cancel()
	q := s.DB.NewUpdate().Model((*store.OutboxMessage)(nil)).Where("id = ?", m.ID)
	if err != nil {
		last := m.Attempts+1 >= maxAttempts
		s.Log.Warn().Err(err).Int64("outbox_id", m.ID).Bool("given_up", last).Msg("mail not delivered")
		q = q.Set("attempts = attempts + 1, last_error = ?", err.Error()).
			Set("next_attempt_at = now() + ? * interval '1 millisecond'", retryAfter(m.Attempts+1).Milliseconds())
		if last {
			q = q.Set("body = body_redacted")
		}
	} else {
		q = q.Set("attempts = attempts + 1, sent_at = now(), last_error = '', body = body_redacted, next_attempt_at = NULL")
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("update outbox %d: %w", m.ID, err)
	}
	return nil
}

// release gives claimed messages back, due now; should it fail, their
// lease expires instead.
func (s *Sender) release(ctx context.Context, msgs []store.OutboxMessage) {
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	ctx, cancel := markContext(ctx)
	defer cancel()
	if _, err := s.DB.NewRaw("UPDATE outbox SET next_attempt_at = NULL WHERE id IN (?) AND sent_at IS NULL", bun.List(ids)).Exec(ctx); err != nil {
		s.Log.Warn().Err(err).Ints64("outbox_ids", ids).Msg("claimed mail not given back; it is sent once its lease expires")
	}
}

// defaultFrom is the sender when CP_SMTP_FROM is not set.
var defaultFrom = mail.Address{Name: "IntelliAuth", Address: "no-reply@intelliauth.localhost"}

// deliver sends m to the relay, or writes it to Dir when there is none;
// ctx bounds the whole delivery.
func (s *Sender) deliver(ctx context.Context, m store.OutboxMessage) error {
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
		to, err := mail.ParseAddress(m.Recipient)
		if err != nil {
			return err
		}
		return s.send(ctx, from.Address, to.Address, msg)
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

// send hands msg to the relay, switching to TLS when the relay offers
// STARTTLS and authenticating with PLAIN (over TLS, or to localhost only)
// when there is a username. Each step has commandTimeout; ctx ending closes
// the connection, whatever the relay does.
func (s *Sender) send(ctx context.Context, from, to string, msg []byte) (err error) {
	host, p, err := net.SplitHostPort(s.SMTP.Addr)
	if err != nil {
		return fmt.Errorf("relay address: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return fmt.Errorf("relay address %q: port %q", s.SMTP.Addr, p)
	}
	var conn net.Conn
	stop := func() bool { return false }
	defer func() {
		if conn != nil {
			stop()
			_ = conn.Close()
		}
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}()
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTLSPolicy(gomail.TLSOpportunistic),
		gomail.WithTimeout(commandTimeout),
		gomail.WithHELO("localhost"),
		gomail.WithDialContextFunc(func(dctx context.Context, network, addr string) (net.Conn, error) {
			c, err := new(net.Dialer).DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The library's deadlines bound each read and write; this
			// ends one ctx no longer wants.
			conn, stop = c, context.AfterFunc(ctx, func() { _ = c.Close() })
			return c, nil
		}),
	}
	if s.SMTP.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
			gomail.WithUsername(s.SMTP.Username), gomail.WithPassword(s.SMTP.Password))
	}
	client, err := gomail.NewClient(host, opts...)
	if err != nil {
		return err
	}
	c, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("relay %s: %w", s.SMTP.Addr, err)
	}
	step := func(name string, f func() error) error {
		if err := c.UpdateDeadline(commandTimeout); err != nil {
			return err
		}
		if err := f(); err != nil {
			return fmt.Errorf("relay %s: %s: %w", s.SMTP.Addr, name, err)
		}
		return nil
	}
	var w io.WriteCloser
	for _, st := range []struct {
		name string
		f    func() error
	}{
		{"MAIL", func() error { return c.Mail((&mail.Address{Address: from}).String()) }},
		{"RCPT", func() error { return c.Rcpt((&mail.Address{Address: to}).String()) }},
		{"DATA", func() (err error) { w, err = c.Data(); return err }},
		{"message", func() error { _, err := w.Write(msg); return err }},
		{"end of DATA", func() error { return w.Close() }},
	} {
		if err := step(st.name, st.f); err != nil {
			return err
		}
	}
	// The relay has the message: a failed QUIT is no failed delivery.
	_ = step("QUIT", c.Quit)
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
