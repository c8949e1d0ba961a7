package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/mail"
)

// rowsHolding lists the public tables with a row whose text holds s.
func rowsHolding(t *testing.T, h *harness.Harness, s string) []string {
	t.Helper()
	ctx := context.Background()
	var tables []string
	if err := h.DB.NewRaw("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").Scan(ctx, &tables); err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, tbl := range tables {
		var n int
		q := fmt.Sprintf("SELECT count(*) FROM %q t WHERE strpos(t::text, ?) > 0", tbl)
		if err := h.DB.NewRaw(q, s).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			found = append(found, tbl)
		}
	}
	return found
}

func TestAnInvitationSecretIsReadableNowhereOnceItsMailIsDone(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	// A relay that refuses every connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name    string
		sender  func(dir string) *mail.Sender
		prepare func(email string) // before delivery
	}{
		{"a message written as a file", func(dir string) *mail.Sender { return &mail.Sender{DB: h.DB, Dir: dir, Log: h.Log} }, func(string) {}},
		{"a message given up after its last attempt", func(dir string) *mail.Sender {
			return &mail.Sender{DB: h.DB, Dir: dir, Log: h.Log, SMTP: mail.SMTP{Addr: closed}}
		}, func(email string) {
			if _, err := h.DB.NewRaw("UPDATE outbox SET attempts = 9 WHERE recipient = ?", email).Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			email := "secret-" + uniq() + "@example.test"
			_, secret := invite(t, h, w, email, "viewer")
			tt.prepare(email)
			dir := t.TempDir()
			if _, err := tt.sender(dir).DeliverPending(context.Background()); err != nil {
				t.Fatal(err)
			}
			var done int
			if err := h.DB.NewRaw("SELECT count(*) FROM outbox WHERE recipient = ? AND (sent_at IS NOT NULL OR attempts >= 10)", email).Scan(context.Background(), &done); err != nil || done != 1 {
				t.Fatalf("done messages = %d, %v", done, err)
			}
			if tables := rowsHolding(t, h, secret); len(tables) != 0 {
				t.Errorf("the secret is stored in %v", tables)
			}
			var body string
			if err := h.DB.NewRaw("SELECT body FROM outbox WHERE recipient = ?", email).Scan(context.Background(), &body); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(body, "You have been invited") || !strings.Contains(body, "redacted") {
				t.Errorf("the kept body is not the message, redacted: %s", body)
			}
			// The recipient's copy has it.
			files, _ := filepath.Glob(filepath.Join(dir, "*"+strings.ReplaceAll(email, "@", "_")+".eml"))
			if tt.sender(dir).SMTP.Addr == "" && len(files) != 1 {
				t.Errorf("mail files = %v", files)
			}
			for _, f := range files {
				if b, _ := os.ReadFile(f); !strings.Contains(string(b), secret) {
					t.Errorf("%s lacks the secret", f)
				}
			}
		})
	}
}
