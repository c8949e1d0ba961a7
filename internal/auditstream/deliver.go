package auditstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/intelliauth/controlplane/internal/outbound"
)

// MaxRetryAfter caps what a receiver's Retry-After may ask for.
const MaxRetryAfter = time.Hour

// maxErrorBody bounds the part of a receiver's answer quoted in Err.
const maxErrorBody = 200

// Result is one delivery attempt, as the stream's delivery log keeps it.
type Result struct {
	// Status is the receiver's HTTP status; 0 when none came.
	Status  int
	Latency time.Duration
	// Err is nil when the receiver took the batch (2xx). Otherwise it is
	// a short sentence fit for the customer's delivery log: the status
	// and the start of the receiver's answer, or what failed on the way
	// (timed out, connection refused, address not allowed); never our
	// internals.
	Err error
	// Retryable says whether the failure may pass by itself: network
	// errors, timeouts, 408, 425, 429 and 5xx. The others (any other 4xx,
	// a redirect, a refused address, an untrusted certificate, a missing
	// credential) need the customer to fix the stream. A stream retries
	// both with backoff, since a fix can come at any time, until it is
	// suspended; Retryable is for how it reports the failure.
	Retryable bool
	// RetryAfter is the wait a 429 or 503 asked for (Retry-After),
	// capped at MaxRetryAfter; 0 when none.
	RetryAfter time.Duration
}

// Deliver sends batch to t's endpoint through client (an
// outbound.NewClient), signed with t.Secret at the time of sending and
// carrying the batch's idempotency key, and reads at most a bounded part
// of the answer. It never panics and never returns a Result with Err nil
// and a non-2xx status.
func Deliver(ctx context.Context, client *http.Client, t Target, batch Batch) Result {
	if msg := missing(t); msg != "" {
		return Result{Err: errors.New(msg)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Endpoint, bytes.NewReader(batch.Body))
	if err != nil {
		return Result{Err: errors.New("endpoint is not a valid URL")}
	}
	req.Header.Set("Content-Type", batch.ContentType)
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(IdempotencyHeader, batch.IdempotencyKey(t.StreamID))
	switch t.Kind {
	case KindSplunkHEC:
		req.Header.Set("Authorization", "Splunk "+t.Credential)
	case KindDatadog:
		req.Header.Set("DD-API-KEY", t.Credential)
	}
	if len(t.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(t.Secret, time.Now(), batch.Body))
	}

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		msg, retryable := transportError(ctx, err)
		return Result{Latency: time.Since(start), Err: errors.New(msg), Retryable: retryable}
	}
	// A 2xx whose body fails to arrive is delivered all the same.
	answer, _ := outbound.ReadBody(resp.Body)
	r := Result{Status: resp.StatusCode, Latency: time.Since(start)}
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return r
	case code >= 300 && code < 400:
		r.Err = errors.New("receiver answered " + statusText(code) + ": redirects are not followed, give the final URL")
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		r.Err = errors.New("receiver answered " + statusText(code) + quote(answer))
		r.Retryable = true
	default:
		r.Err = errors.New("receiver refused the batch: " + statusText(code) + quote(answer))
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// missing names what t lacks for its kind, or is "".
func missing(t Target) string {
	if _, err := encodingFor(t); err != nil {
		return "stream kind or format is not supported"
	}
	switch {
	case t.Kind == KindHTTPS && len(t.Secret) == 0:
		return "stream has no signing secret"
	case t.Kind == KindSplunkHEC && t.Credential == "":
		return "stream has no HEC token"
	case t.Kind == KindDatadog && t.Credential == "":
		return "stream has no Datadog API key"
	}
	return ""
}

func statusText(code int) string {
	if s := http.StatusText(code); s != "" {
		return strconv.Itoa(code) + " " + s
	}
	return strconv.Itoa(code)
}

// quote is ": " and the start of a receiver's answer, on one line of
// printable text, or "" when it said nothing.
func quote(body []byte) string {
	s := strings.ToValidUTF8(string(body), "")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }), " ")
	if s == "" {
		return ""
	}
	if len(s) > maxErrorBody {
		s = strings.ToValidUTF8(s[:maxErrorBody], "") + "…"
	}
	return ": " + s
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, MaxRetryAfter))
}

// transportError says in a few words why no answer came, and whether it
// may pass by itself.
func transportError(ctx context.Context, err error) (string, bool) {
	var (
		addr     *outbound.AddressError
		dns      *net.DNSError
		certErr  *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		ne       net.Error
	)
	switch {
	case errors.As(err, &addr):
		return addr.Error(), false
	case errors.Is(err, outbound.ErrSchemeNotAllowed):
		return outbound.ErrSchemeNotAllowed.Error(), false
	case ctx.Err() != nil:
		return "delivery was canceled", true
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "endpoint host not found", true
		}
		return "could not resolve the endpoint host", true
	case errors.As(err, &hostname):
		return "endpoint's TLS certificate does not name its host", false
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &invalid):
		return "endpoint's TLS certificate is not trusted", false
	case errors.As(err, &record),
		// net/http says so in an error of no type of its own.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "endpoint does not speak TLS", false
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out waiting for the receiver", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "receiver closed the connection", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "endpoint is unreachable", true
	}
	return "could not reach the endpoint", true
}
