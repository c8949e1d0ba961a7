package auditstream

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/outbound"
)

// seen is what a test receiver was sent.
type seen struct {
	header http.Header
	body   []byte
}

// receiver records each request and answers with the next of answers
// (the last one again once they run out).
func receiver(t *testing.T, answers ...func(http.ResponseWriter)) (*httptest.Server, func() []seen) {
	t.Helper()
	var (
		mu  sync.Mutex
		got []seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Header.Clone(), b})
		answer := answers[min(len(got), len(answers))-1]
		mu.Unlock()
		answer(w)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen { mu.Lock(); defer mu.Unlock(); return append([]seen(nil), got...) }
}

func status(code int, body string, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

var devClient = outbound.NewClient(outbound.Options{AllowPrivate: true})

func deliver(t *testing.T, srv *httptest.Server, name string) (Result, Target, Batch) {
	t.Helper()
	target := targets()[name]
	target.Endpoint = srv.URL + "/in"
	target.Secret = []byte("whsec_test")
	b := encode(t, target, sample())
	return Deliver(context.Background(), devClient, target, b), target, b
}

func TestAnHTTPSDeliveryIsSignedAndCarriesItsIdempotencyKey(t *testing.T) {
	for _, name := range []string{"ndjson", "cloudevents"} {
		srv, got := receiver(t, status(http.StatusOK, ""))
		r, target, b := deliver(t, srv, name)
		if r.Err != nil || r.Status != http.StatusOK || r.Latency <= 0 {
			t.Fatalf("%s: %+v", name, r)
		}
		req := got()[0]
		if err := Verify(req.header.Get("IntelliAuth-Signature"), req.body, target.Secret, time.Minute, time.Now()); err != nil {
			t.Errorf("%s: the receiver cannot verify the signature: %v", name, err)
		}
		if k := req.header.Get("Idempotency-Key"); k != "ast_1/evt_01JGQ8Z0000000000000000001/evt_01JGQ8Z0000000000000000002" {
			t.Errorf("%s: Idempotency-Key %q", name, k)
		}
		if req.header.Get("Content-Type") != b.ContentType || req.header.Get("User-Agent") != UserAgent {
			t.Errorf("%s: headers %v", name, req.header)
		}
		if req.header.Get("Authorization") != "" || req.header.Get("DD-API-KEY") != "" {
			t.Errorf("%s: a credential header was sent", name)
		}
		if string(req.body) != string(b.Body) {
			t.Errorf("%s: body %s", name, req.body)
		}
	}
}

func TestSplunkAndDatadogGetTheirCredentialHeaders(t *testing.T) {
	srv, got := receiver(t, status(http.StatusOK, `{"text":"Success","code":0}`))
	if r, _, _ := deliver(t, srv, "splunk_hec"); r.Err != nil {
		t.Fatal(r.Err)
	}
	req := got()[0]
	if req.header.Get("Authorization") != "Splunk c" {
		t.Errorf("Authorization %q", req.header.Get("Authorization"))
	}
	if _, err := splunkShape(req.body); err != nil {
		t.Errorf("HEC body: %v", err)
	}

	srv, got = receiver(t, status(http.StatusAccepted, "{}"))
	if r, _, _ := deliver(t, srv, "datadog"); r.Err != nil || r.Status != http.StatusAccepted {
		t.Fatalf("%+v", r)
	}
	req = got()[0]
	if req.header.Get("DD-API-KEY") != "c" || req.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", req.header)
	}
	if _, err := datadogShape(req.body); err != nil {
		t.Errorf("Datadog body: %v", err)
	}
}

func TestA500IsRetryableAndTheRetryCarriesTheSameKey(t *testing.T) {
	srv, got := receiver(t, status(http.StatusInternalServerError, "upstream\x00 down\n\tplease retry"), status(http.StatusOK, ""))
	r, _, _ := deliver(t, srv, "ndjson")
	if r.Status != 500 || !r.Retryable || r.Err == nil || r.Err.Error() != "receiver answered 500 Internal Server Error: upstream down please retry" {
		t.Fatalf("first attempt: %+v", r)
	}
	if r, _, _ = deliver(t, srv, "ndjson"); r.Err != nil || r.Status != 200 {
		t.Fatalf("second attempt: %+v", r)
	}
	reqs := got()
	if len(reqs) != 2 || reqs[0].header.Get("Idempotency-Key") != reqs[1].header.Get("Idempotency-Key") {
		t.Fatalf("%d requests", len(reqs))
	}
}

func TestRetryAfterIsHonouredInTheResult(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		answer func(http.ResponseWriter)
		min    time.Duration
		max    time.Duration
	}{
		{status(http.StatusTooManyRequests, "slow down", "Retry-After", "7"), 7 * time.Second, 7 * time.Second},
		{status(http.StatusServiceUnavailable, "", "Retry-After", date), 80 * time.Second, 90 * time.Second},
		{status(http.StatusTooManyRequests, "", "Retry-After", "99999999"), MaxRetryAfter, MaxRetryAfter},
		{status(http.StatusServiceUnavailable, "", "Retry-After", "soon"), 0, 0},
		{status(http.StatusInternalServerError, "", "Retry-After", "7"), 0, 0},
	}
	for i, c := range cases {
		srv, _ := receiver(t, c.answer)
		r, _, _ := deliver(t, srv, "ndjson")
		if !r.Retryable || r.RetryAfter < c.min || r.RetryAfter > c.max {
			t.Errorf("case %d: %+v, want RetryAfter in [%v, %v]", i, r, c.min, c.max)
		}
	}
}

func TestWhatTheCustomerMustFixIsNotRetryable(t *testing.T) {
	cases := []struct {
		answer func(http.ResponseWriter)
		err    string
	}{
		{status(http.StatusUnauthorized, `{"text":"Invalid token","code":4}`), `receiver refused the batch: 401 Unauthorized: {"text":"Invalid token","code":4}`},
		{status(http.StatusRequestEntityTooLarge, strings.Repeat("é", 300)), "receiver refused the batch: 413 Request Entity Too Large: " + strings.Repeat("é", 100) + "…"},
		{status(http.StatusFound, "", "Location", "https://elsewhere.example.com/"), "receiver answered 302 Found: redirects are not followed, give the final URL"},
	}
	for _, c := range cases {
		srv, got := receiver(t, c.answer)
		r, _, _ := deliver(t, srv, "ndjson")
		if r.Retryable || r.Err == nil || r.Err.Error() != c.err {
			t.Errorf("%+v, want %q", r, c.err)
		}
		if len(got()) != 1 {
			t.Errorf("%d requests", len(got()))
		}
	}
}

func TestTransportFailuresSayBrieflyWhatHappened(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so that the server notices the client leave
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	fastClient := outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: 100 * time.Millisecond})
	toLoopback := outbound.NewClient(outbound.Options{Resolver: loopbackDNS{}})

	cases := []struct {
		name      string
		client    *http.Client
		endpoint  string
		err       string
		retryable bool
	}{
		{"closed port", devClient, closed.URL, "connection refused", true},
		{"slow receiver", fastClient, slow.URL, "timed out waiting for the receiver", true},
		{"name to loopback", toLoopback, "https://siem.example.com/in", "endpoint address is not allowed: loopback address", false},
		{"plain http", outbound.NewClient(outbound.Options{}), "http://siem.example.com/in", "endpoint must use https", false},
		{"untrusted certificate", devClient, tlsSrv.URL, "endpoint's TLS certificate is not trusted", false},
		{"no TLS", devClient, strings.Replace(plain.URL, "http:", "https:", 1), "endpoint does not speak TLS", false},
		{"metadata", devClient, "http://169.254.169.254/latest", "endpoint address is not allowed: cloud metadata address", false},
	}
	for _, c := range cases {
		target := targets()["ndjson"]
		target.Endpoint = c.endpoint
		r := Deliver(context.Background(), c.client, target, encode(t, target, sample()))
		if r.Status != 0 || r.Err == nil || r.Err.Error() != c.err || r.Retryable != c.retryable {
			t.Errorf("%s: %+v, want %q (retryable %v)", c.name, r, c.err, c.retryable)
		}
	}
}

type loopbackDNS struct{}

func (loopbackDNS) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

func TestAStreamMissingWhatItsKindNeedsIsNotSent(t *testing.T) {
	srv, got := receiver(t, status(http.StatusOK, ""))
	cases := map[string]Target{
		"stream has no signing secret":           {Kind: KindHTTPS},
		"stream has no HEC token":                {Kind: KindSplunkHEC},
		"stream has no Datadog API key":          {Kind: KindDatadog},
		"stream kind or format is not supported": {Kind: "kafka"},
	}
	for want, target := range cases {
		target.Endpoint = srv.URL
		r := Deliver(context.Background(), devClient, target, Batch{Body: []byte("{}")})
		if r.Err == nil || r.Err.Error() != want || r.Retryable {
			t.Errorf("%+v, want %q", r, want)
		}
	}
	if len(got()) != 0 {
		t.Fatalf("%d requests sent", len(got()))
	}
}
