package intelliauth

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	generated "github.com/intelliauth/controlplane/sdk/go/internal/intelliauth"
)

// Client is a client of the control plane's API: every operation of the
// generated client (the raw methods, which answer the *http.Response, and
// the …WithResponse ones), with the authentication, retries and
// idempotency keys of its options, and the waits for sagas.
type Client struct {
	*ClientWithResponses

	server string
	doer   *doer
}

// Option configures a Client.
type Option func(*options)

type options struct {
	token       string
	httpClient  *http.Client
	maxAttempts int
	maxWait     time.Duration
	userAgent   string
}

// DefaultUserAgent is the User-Agent of a Client without WithUserAgent.
const DefaultUserAgent = "intelliauth-go"

// WithToken authenticates every request with the token, as Authorization:
// Bearer: a member's token (cpt_…, from POST /api/v1/auth/sign-in) or a
// service account's (cps_…).
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithHTTPClient sends the requests with h instead of a client of
// http.DefaultTransport. The Client's retries come on top of h's.
func WithHTTPClient(h *http.Client) Option { return func(o *options) { o.httpClient = h } }

// WithRetry sets how many times a request is sent at most (1: never
// retried) and the longest pause before a retry, which caps a Retry-After
// too. The default is 5 attempts and 30 s.
func WithRetry(maxAttempts int, maxWait time.Duration) Option {
	return func(o *options) { o.maxAttempts, o.maxWait = maxAttempts, maxWait }
}

// WithUserAgent sets the User-Agent of every request.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithIdempotencyKey sends one call with the Idempotency-Key key, so that
// sending the call again, from this process or another, is answered the
// first answer and does nothing twice. A mutation without it gets a random
// key, which the Client's own retries of the call reuse.
func WithIdempotencyKey(key string) RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set(idempotencyKeyHeader, key)
		return nil
	}
}

const idempotencyKeyHeader = "Idempotency-Key"

// New returns a client of the API at server, its origin (e.g.
// "http://127.0.0.1:8080"); the operations' paths begin with /api/v1.
func New(server string, opts ...Option) (*Client, error) {
	o := options{maxAttempts: 5, maxWait: 30 * time.Second, userAgent: DefaultUserAgent}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxAttempts < 1 {
		return nil, fmt.Errorf("intelliauth: WithRetry: maxAttempts is %d, want at least 1", o.maxAttempts)
	}
	if o.maxWait < 0 {
		return nil, fmt.Errorf("intelliauth: WithRetry: maxWait is %v, want at least 0", o.maxWait)
	}
	if o.httpClient == nil {
		o.httpClient = &http.Client{}
	}
	server = strings.TrimSuffix(server, "/")
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return nil, fmt.Errorf("intelliauth: server %q is not an http:// or https:// URL", server)
	}
	// The generated paths start with /api/v1, so a server given with it
	// would have it twice.
	server = strings.TrimSuffix(server, "/api/v1")
	d := &doer{options: o}
	c, err := generated.NewClientWithResponses(server, generated.WithHTTPClient(d))
	if err != nil {
		return nil, err
	}
	return &Client{ClientWithResponses: c, server: server, doer: d}, nil
}

// Server is the origin the Client sends its requests to.
func (c *Client) Server() string { return c.server }

// doer sends the generated client's requests: it authenticates them, gives
// a mutation its Idempotency-Key and retries what may be retried.
type doer struct {
	options
}

func (d *doer) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if d.token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", d.userAgent)
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead && req.Header.Get(idempotencyKeyHeader) == "" {
		req.Header.Set(idempotencyKeyHeader, newIdempotencyKey())
	}
	// The body is read once and sent again from memory on each attempt.
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		try := req.Clone(ctx)
		if body != nil {
			try.Body = io.NopCloser(bytes.NewReader(body))
			try.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			try.ContentLength = int64(len(body))
		}
		resp, err := d.httpClient.Do(try)
		if attempt >= d.maxAttempts || !retryable(resp, err) || ctx.Err() != nil {
			return resp, err
		}
		wait := d.backoff(attempt)
		if resp != nil {
			if ra, ok := retryAfter(resp.Header, time.Now()); ok {
				wait = min(ra, d.maxWait)
			}
			// Read a little of the answer so the connection can be reused.
			_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
			resp.Body.Close()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// retryable reports whether an attempt may be sent again: it got no answer,
// or an answer that says the request was not done and may be later.
func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is the pause before the retry after attempt when the answer did
// not say: 250 ms doubled at each attempt, with jitter, at most maxWait.
func (d *doer) backoff(attempt int) time.Duration {
	w := 250 * time.Millisecond << min(attempt-1, 10)
	w = w/2 + rand.N(w/2+1)
	return min(w, d.maxWait)
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func newIdempotencyKey() string {
	var b [16]byte
	_, _ = cryptorand.Read(b[:])
	return "sdk-" + hex.EncodeToString(b[:])
}
