package mail

import (
	"bytes"
	"fmt"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/intelliauth/controlplane/internal/store"
)

// maxLine is RFC 5322's limit on a line, CRLF excluded.
const maxLine = 998

// Message renders m as an RFC 5322 message from from. Every header value is
// encoded by the standard library, never pasted in: addresses by
// net/mail's Address.String, the subject as RFC 2047 encoded words (so a
// CR or LF in it is encoded text, not a new header). The body is sent as
// 8bit UTF-8 with CRLF line ends, so a link or secret in it reads as it is
// in an .eml file; the SMTP client announces it (BODY=8BITMIME) to a
// relay that supports it.
func Message(from mail.Address, m store.OutboxMessage) ([]byte, error) {
	to, err := mail.ParseAddress(m.Recipient)
	if err != nil {
		return nil, fmt.Errorf("recipient of outbox %d: %w", m.ID, err)
	}
	var b bytes.Buffer
	for _, h := range [][2]string{
		{"From", from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", m.CreatedAt.UTC().Format(time.RFC1123Z)},
		{"Message-ID", "<outbox-" + strconv.FormatInt(m.ID, 10) + "@intelliauth>"},
		{"MIME-Version", "1.0"},
		{"Content-Type", mime.FormatMediaType("text/plain", map[string]string{"charset": "utf-8"})},
		{"Content-Transfer-Encoding", "8bit"},
	} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	for line := range strings.Lines(m.Body) {
		line = strings.TrimRight(line, "\r\n")
		if len(line) > maxLine {
			return nil, fmt.Errorf("outbox %d: a body line of %d bytes (at most %d)", m.ID, len(line), maxLine)
		}
		b.WriteString(line + "\r\n")
	}
	return b.Bytes(), nil
}
