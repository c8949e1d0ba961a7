package mail

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/store"
)

// queue writes n messages to the outbox and returns their ids.
func queue(t *testing.T, db *bun.DB, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := range n {
		m := store.OutboxMessage{Recipient: fmt.Sprintf("joiner-%d@example.test", i), Subject: "s", Body: "secret cpi_x\r\n", BodyRedacted: "cpi_(redacted)\r\n"}
		if _, err := db.NewInsert().Model(&m).Returning("id").Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	return ids
}

// relay is a fake SMTP relay on a free loopback port.
type relay struct {
	ln       net.Listener
	accepted chan struct{} // a value for each connection taken
	mu       sync.Mutex
	conns    []net.Conn
}

// stallingRelay accepts connections, greets them if greet, then reads
// whatever comes and never answers, until the test ends.
func stallingRelay(t *testing.T, greet bool) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, accepted: make(chan struct{}, 100)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			if greet {
				_, _ = io.WriteString(c, "220 relay.test ESMTP\r\n")
			}
			r.accepted <- struct{}{}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// close ends the relay and every connection it took.
func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

func (r *relay) waitAccepted(t *testing.T) {
	t.Helper()
	select {
	case <-r.accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the sender never connected to the relay")
	}
}

func TestAStalledRelayLocksNoOutboxRowAndStopsWithItsContext(t *testing.T) {
	for _, greet := range []bool{true, false} {
		t.Run(fmt.Sprintf("greeting %v", greet), func(t *testing.T) {
			db := testDB(t)
			ids := queue(t, db, 3)
			r := stallingRelay(t, greet)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &Sender{DB: db, SMTP: SMTP{Addr: r.addr()}, Dir: t.TempDir(), Log: zerolog.Nop(), Every: 50 * time.Millisecond}
			stopped := make(chan struct{})
			go func() { s.Run(ctx); close(stopped) }()
			r.waitAccepted(t)
			time.Sleep(100 * time.Millisecond) // the sender waits on the relay

			// No row is held: another transaction locks them all at once.
			err := db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
				var locked []int64
				if err := tx.NewRaw("SELECT id FROM outbox WHERE id IN (?) FOR UPDATE NOWAIT", bun.List(ids)).Scan(ctx, &locked); err != nil {
					return err
				}
				if len(locked) != len(ids) {
					return fmt.Errorf("locked %v of %v", locked, ids)
				}
				return nil
			})
			if err != nil {
				t.Errorf("while a delivery stalls, the outbox rows are held: %v", err)
			}

			cancel()
			select {
			case <-stopped:
			case <-time.After(3 * time.Second):
				t.Error("the sender did not stop within 3s of its context's end")
				r.close() // let it go
				<-stopped
			}

			// Nothing is lost: the interrupted message is sent by the next
			// sender, and none counts as a failed attempt.
			var unsent int
			if err := db.NewRaw("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND attempts = 0").Scan(context.Background(), &unsent); err != nil || unsent != len(ids) {
				t.Fatalf("unsent, unattempted messages = %d, %v; want %d", unsent, err, len(ids))
			}
			next := &Sender{DB: db, Dir: t.TempDir(), Log: zerolog.Nop()}
			if n, err := next.DeliverPending(context.Background()); err != nil || n != len(ids) {
				t.Fatalf("the next sender sent %d, %v; want %d", n, err, len(ids))
			}
		})
	}
}

// delivery is what a working relay received.
type delivery struct {
	mailFrom, rcptTo string
	data             string // lines end in LF
}

// workingRelay is a fake SMTP relay that accepts every message, without
// STARTTLS or AUTH, and reports each on the returned channel.
func workingRelay(t *testing.T) (addr string, got <-chan delivery) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan delivery, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tp := textproto.NewConn(c)
				_ = tp.PrintfLine("220 relay.test ESMTP")
				var d delivery
				for {
					line, err := tp.ReadLine()
					if err != nil {
						return
					}
					verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
					switch verb {
					case "EHLO":
						_ = tp.PrintfLine("250-relay.test")
						_ = tp.PrintfLine("250 8BITMIME")
					case "MAIL":
						d.mailFrom = line
						_ = tp.PrintfLine("250 ok")
					case "RCPT":
						d.rcptTo = line
						_ = tp.PrintfLine("250 ok")
					case "DATA":
						_ = tp.PrintfLine("354 go on")
						b, err := io.ReadAll(tp.DotReader())
						if err != nil {
							return
						}
						d.data = string(b)
						_ = tp.PrintfLine("250 queued")
						ch <- d
					case "QUIT":
						_ = tp.PrintfLine("221 bye")
						return
					default:
						_ = tp.PrintfLine("250 ok")
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func TestAMessageReachesTheRelayAsRendered(t *testing.T) {
	db := testDB(t)
	ids := queue(t, db, 1)
	addr, got := workingRelay(t)
	s := &Sender{DB: db, SMTP: SMTP{Addr: addr}, Log: zerolog.Nop()}
	if n, err := s.DeliverPending(context.Background()); err != nil || n != 1 {
		t.Fatalf("sent %d, %v", n, err)
	}
	var m store.OutboxMessage
	if err := db.NewSelect().Model(&m).Where("id = ?", ids[0]).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.SentAt == nil || m.Attempts != 1 || m.Body != m.BodyRedacted {
		t.Errorf("row after delivery: sent %v, attempts %d, body %q", m.SentAt, m.Attempts, m.Body)
	}
	m.Body = "secret cpi_x\r\n"
	want, err := Message(defaultFrom, m)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.mailFrom != "MAIL FROM:<no-reply@intelliauth.localhost> BODY=8BITMIME" || d.rcptTo != "RCPT TO:<joiner-0@example.test>" {
			t.Errorf("envelope %q, %q", d.mailFrom, d.rcptTo)
		}
		if d.data != strings.ReplaceAll(string(want), "\r\n", "\n") {
			t.Errorf("the relay got\n%s\nwant\n%s", d.data, want)
		}
	default:
		t.Fatal("the relay got nothing")
	}
}

func TestARelayThatStopsAnsweringFailsTheAttemptWhichIsRetriedLater(t *testing.T) {
	defer func(d time.Duration) { commandTimeout = d }(commandTimeout)
	commandTimeout = 300 * time.Millisecond
	db := testDB(t)
	ids := queue(t, db, 1)
	r := stallingRelay(t, true)
	s := &Sender{DB: db, SMTP: SMTP{Addr: r.addr()}, Log: zerolog.Nop()}
	start := time.Now()
	if n, err := s.DeliverPending(context.Background()); err != nil || n != 0 {
		t.Fatalf("sent %d, %v", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the attempt took %v with a command timeout of %v", d, commandTimeout)
	}
	var row struct {
		Attempts  int    `bun:"attempts"`
		LastError string `bun:"last_error"`
		Waits     bool   `bun:"waits"`
	}
	if err := db.NewRaw("SELECT attempts, last_error, next_attempt_at > now() + interval '20 seconds' AS waits FROM outbox WHERE id = ? AND sent_at IS NULL", ids[0]).
		Scan(context.Background(), &row); err != nil {
		t.Fatal(err)
	}
	if row.Attempts != 1 || row.LastError == "" || !row.Waits {
		t.Errorf("after a stalled attempt: %+v", row)
	}
	// Not before its back-off; then sent.
	files := &Sender{DB: db, Dir: t.TempDir(), Log: zerolog.Nop()}
	if n, err := files.DeliverPending(context.Background()); err != nil || n != 0 {
		t.Fatalf("during the back-off: sent %d, %v", n, err)
	}
	if _, err := db.NewRaw("UPDATE outbox SET next_attempt_at = now() WHERE id = ?", ids[0]).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := files.DeliverPending(context.Background()); err != nil || n != 1 {
		t.Fatalf("after the back-off: sent %d, %v", n, err)
	}
}

func TestAClaimIsItsSendersUntilItExpires(t *testing.T) {
	defer func(l, d time.Duration) { lease, sendTimeout = l, d }(lease, sendTimeout)
	lease, sendTimeout = 500*time.Millisecond, 100*time.Millisecond
	db := testDB(t)
	ids := queue(t, db, 3)
	// A sender claims the messages and dies.
	dead := &Sender{DB: db, Log: zerolog.Nop()}
	if msgs, err := dead.claim(context.Background()); err != nil || len(msgs) != len(ids) {
		t.Fatalf("claimed %d, %v", len(msgs), err)
	}
	dir := t.TempDir()
	other := &Sender{DB: db, Dir: dir, Log: zerolog.Nop()}
	if n, err := other.DeliverPending(context.Background()); err != nil || n != 0 {
		t.Fatalf("while claimed: sent %d, %v", n, err)
	}
	time.Sleep(lease)
	if n, err := other.DeliverPending(context.Background()); err != nil || n != len(ids) {
		t.Fatalf("once the claim expired: sent %d, %v", n, err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != len(ids) {
		t.Errorf("files = %v", files)
	}
}
