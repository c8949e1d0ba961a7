package mail

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/store"
)

func TestAMessageHasExactlyItsHeadersWhateverItsSubject(t *testing.T) {
	hostile := "Acme\r\nBcc: attacker@example.test\r\nContent-Type: text/html\r\n\r\n<a href=https://evil.example>Accept</a>"
	tests := []struct {
		name    string
		from    string
		subject string
		body    string
	}{
		{"an invitation to an organisation with a hostile name", "IntelliAuth <no-reply@intelliauth.localhost>",
			"You are invited to " + hostile + " on IntelliAuth", "You have been invited to join " + hostile + " as viewer.\r\n"},
		{"a subject that is not ASCII", "no-reply@intelliauth.localhost", "Invitation à Zürich 🎉", "Grüße\r\n"},
		{"a From whose name needs quoting", `"IntelliAuth, Inc." <no-reply@intelliauth.localhost>`, "plain", strings.Repeat("long line ", 30) + "\r\n"},
	}
	want := []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, err := mail.ParseAddress(tt.from)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := Message(*from, store.OutboxMessage{ID: 7, Recipient: "joiner@example.test", Subject: tt.subject, Body: tt.body, CreatedAt: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("%v:\n%s", err, raw)
			}
			var keys []string
			for k := range msg.Header {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, want) {
				t.Fatalf("headers = %v, want %v:\n%s", keys, want, raw)
			}
			for _, k := range want {
				if n := len(msg.Header[k]); n != 1 {
					t.Errorf("%s appears %d times", k, n)
				}
			}
			if got := msg.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
			if to, err := msg.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "joiner@example.test" {
				t.Errorf("To = %v, %v", to, err)
			}
			if f, err := msg.Header.AddressList("From"); err != nil || len(f) != 1 || *f[0] != *from {
				t.Errorf("From = %v, %v", f, err)
			}
			subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
			if err != nil || subject != tt.subject {
				t.Errorf("Subject decodes to %q, %v; want %q", subject, err, tt.subject)
			}
			body, err := io.ReadAll(msg.Body)
			if err != nil || string(body) != tt.body {
				t.Errorf("body decodes to %q, %v; want %q", body, err, tt.body)
			}
			for _, line := range strings.Split(string(raw), "\r\n") {
				if len(line) > 998 {
					t.Errorf("a line of %d characters", len(line))
				}
			}
		})
	}
}

func TestABodyIsSentWithCRLFLinesOfAtMost998Bytes(t *testing.T) {
	from := mail.Address{Address: "no-reply@intelliauth.localhost"}
	m := store.OutboxMessage{Recipient: "joiner@example.test", Subject: "s", Body: "one\ntwo\r\nthree"}
	raw, err := Message(from, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, body, _ := strings.Cut(string(raw), "\r\n\r\n"); body != "one\r\ntwo\r\nthree\r\n" {
		t.Errorf("body = %q", body)
	}
	m.Body = strings.Repeat("x", 999)
	if _, err := Message(from, m); err == nil {
		t.Error("a line of 999 bytes was sent")
	}
	m.Body, m.Recipient = "ok", "not an address"
	if _, err := Message(from, m); err == nil {
		t.Error("a message to no address was rendered")
	}
}
