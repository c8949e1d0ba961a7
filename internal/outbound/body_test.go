package outbound

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// endless is a body that never ends, counting what is read of it.
type endless struct{ read int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.read += len(p)
	return len(p), nil
}
func (e *endless) Close() error { return nil }

func TestReadBodyKeepsTheStartAndReadsNoFurtherThanItsBound(t *testing.T) {
	body := &endless{}
	kept, err := ReadBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != MaxKeptBody {
		t.Fatalf("kept %d bytes, want %d", len(kept), MaxKeptBody)
	}
	if body.read > MaxKeptBody+MaxDrainedBody+32<<10 {
		t.Fatalf("read %d bytes of an endless body", body.read)
	}
}

func TestReadBodyReturnsAShortBodyWhole(t *testing.T) {
	kept, err := ReadBody(io.NopCloser(strings.NewReader(`{"text":"Invalid token","code":4}`)))
	if err != nil || string(kept) != `{"text":"Invalid token","code":4}` {
		t.Fatalf("%q, %v", kept, err)
	}
}

// counting counts what the client reads of a real response.
type counting struct {
	io.ReadCloser
	n int
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += n
	return n, err
}

func TestAHugeResponseBodyIsBounded(t *testing.T) {
	chunk := bytes.Repeat([]byte("y"), 32<<10)
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		for req.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	resp, err := NewClient(r.options(true, to("127.0.0.1"))).Get(r.url(t, "siem.example.com", "/"))
	if err != nil {
		t.Fatal(err)
	}
	c := &counting{ReadCloser: resp.Body}
	kept, err := ReadBody(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != MaxKeptBody || c.n > MaxKeptBody+MaxDrainedBody {
		t.Fatalf("kept %d, read %d", len(kept), c.n)
	}
}

func TestASlowDripBodyIsCutByTheRequestTimeout(t *testing.T) {
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-req.Context().Done():
				return
			case <-tick.C:
				if _, err := w.Write([]byte("z")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	})
	o := r.options(true, to("127.0.0.1"))
	o.Timeout = 300 * time.Millisecond
	resp, err := NewClient(o).Get(r.url(t, "siem.example.com", "/"))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := ReadBody(resp.Body)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v, want a timeout", err)
	}
	if len(kept) == 0 || len(kept) >= MaxKeptBody {
		t.Fatalf("kept %d bytes of the drip", len(kept))
	}
}
