package outbound

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a TLS server on loopback (its certificate names
// example.com and *.example.com) that counts the requests it is sent.
type receiver struct {
	*httptest.Server
	hits atomic.Int32
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// url is the receiver's address under name, which the test's resolver
// maps to wherever it likes.
func (r *receiver) url(t *testing.T, name, path string) string {
	t.Helper()
	u, err := url.Parse(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	return "https://" + net.JoinHostPort(name, u.Port()) + path
}

func (r *receiver) options(allowPrivate bool, dns Resolver) Options {
	return Options{
		AllowPrivate: allowPrivate,
		Resolver:     dns,
		TLSConfig:    r.Client().Transport.(*http.Transport).TLSClientConfig,
	}
}

func ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

// to maps every name to the same addresses.
func to(ss ...string) Resolver {
	return resolverFunc(func(string) ([]netip.Addr, error) { return addrs(ss...), nil })
}

func wantAddressError(t *testing.T, err error, class Class) {
	t.Helper()
	var ae *AddressError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v, want an AddressError (%s)", err, class)
	}
	if ae.Class != class {
		t.Fatalf("refused as %s, want %s", ae.Class, class)
	}
}

func TestANameResolvingToLoopbackIsRefusedWithoutAllowPrivateAndReachedWithIt(t *testing.T) {
	r := newReceiver(t, ok)
	target := r.url(t, "siem.example.com", "/in")

	_, err := NewClient(r.options(false, to("127.0.0.1"))).Post(target, "application/json", nil)
	wantAddressError(t, err, Loopback)
	if r.hits.Load() != 0 {
		t.Fatal("the receiver was reached")
	}

	resp, err := NewClient(r.options(true, to("127.0.0.1"))).Post(target, "application/json", nil)
	if err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || r.hits.Load() != 1 {
		t.Fatalf("status %d, %d hits", resp.StatusCode, r.hits.Load())
	}
}

func TestMetadataAndLinkLocalAreRefusedEvenWithAllowPrivate(t *testing.T) {
	r := newReceiver(t, ok)
	for _, c := range []struct {
		addr  string
		class Class
	}{{"169.254.169.254", Metadata}, {"fd00:ec2::254", Metadata}, {"100.100.100.200", Metadata}, {"169.254.10.1", LinkLocal}} {
		_, err := NewClient(r.options(true, to(c.addr))).Get(r.url(t, "metadata.example.com", "/latest/meta-data/"))
		wantAddressError(t, err, c.class)
	}
	_, err := NewClient(r.options(true, nil)).Get("http://169.254.169.254/latest/meta-data/")
	wantAddressError(t, err, Metadata)
}

func TestAnIPv4MappedLoopbackAddressIsRefused(t *testing.T) {
	r := newReceiver(t, ok)
	_, err := NewClient(r.options(false, to("::ffff:127.0.0.1"))).Get(r.url(t, "siem.example.com", "/"))
	wantAddressError(t, err, Loopback)
	_, err = NewClient(r.options(false, nil)).Get(r.url(t, "::ffff:127.0.0.1", "/"))
	wantAddressError(t, err, Loopback)
	_, err = NewClient(r.options(false, to("64:ff9b::7f00:1"))).Get(r.url(t, "siem.example.com", "/"))
	wantAddressError(t, err, Loopback)
	if r.hits.Load() != 0 {
		t.Fatal("the receiver was reached")
	}
}

func TestDNSReboundToLoopbackAfterValidationIsRefusedAtDial(t *testing.T) {
	r := newReceiver(t, ok)
	var lookups atomic.Int32
	rebinding := resolverFunc(func(string) ([]netip.Addr, error) {
		if lookups.Add(1) == 1 {
			return addrs("93.184.216.34"), nil // what the check saw
		}
		return addrs("127.0.0.1"), nil // what the delivery would dial
	})
	o := r.options(false, rebinding)
	target := r.url(t, "siem.example.com", "/in")
	u, err := ValidateEndpoint(target, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHost(context.Background(), u.Hostname(), o); err != nil {
		t.Fatalf("the first answer was public: %v", err)
	}
	_, err = NewClient(o).Post(target, "application/json", nil)
	wantAddressError(t, err, Loopback)
	if r.hits.Load() != 0 || lookups.Load() != 2 {
		t.Fatalf("%d hits, %d lookups", r.hits.Load(), lookups.Load())
	}
}

func TestTheSocketControlChecksTheAddressActuallyDialed(t *testing.T) {
	for _, c := range []struct {
		address      string
		allowPrivate bool
		refused      bool
	}{
		{"93.184.216.34:443", false, false},
		{"127.0.0.1:443", false, true},
		{"127.0.0.1:443", true, false},
		{"[::ffff:10.0.0.1]:443", false, true},
		{"169.254.169.254:80", true, true},
		{"not an address", true, true},
	} {
		err := control(c.allowPrivate)("tcp", c.address, nil)
		if (err != nil) != c.refused {
			t.Errorf("control(%v)(%s) = %v, want refused %v", c.allowPrivate, c.address, err, c.refused)
		}
	}
}

func TestPlainHTTPIsRefusedWithoutAllowPrivate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(ok))
	t.Cleanup(srv.Close)
	_, err := NewClient(Options{Resolver: to("93.184.216.34")}).Get("http://siem.example.com/")
	if !errors.Is(err, ErrSchemeNotAllowed) {
		t.Fatalf("error %v, want ErrSchemeNotAllowed", err)
	}
	resp, err := NewClient(Options{AllowPrivate: true}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// The environment's proxy is read once per process (http.ProxyFromEnvironment
// caches it), so a test setting HTTPS_PROXY proves nothing: the transport
// itself must have no proxy function.
func TestTheEnvironmentsProxyIsNeverUsed(t *testing.T) {
	tr := NewClient(Options{}).Transport.(*schemeGuard).next.(*http.Transport)
	if tr.Proxy != nil {
		t.Fatal("the transport has a proxy function")
	}
}

func TestARedirectIsNotFollowed(t *testing.T) {
	var followed atomic.Bool
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/elsewhere" {
			followed.Store(true)
			return
		}
		http.Redirect(w, req, "/elsewhere", http.StatusFound)
	})
	resp, err := NewClient(r.options(true, to("127.0.0.1"))).Post(r.url(t, "siem.example.com", "/in"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || followed.Load() {
		t.Fatalf("status %d, followed %v", resp.StatusCode, followed.Load())
	}
}

func TestASlowResponseHeaderIsCutByItsTimeout(t *testing.T) {
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) { <-req.Context().Done() })
	o := r.options(true, to("127.0.0.1"))
	o.ResponseHeaderTimeout = 100 * time.Millisecond
	_, err := NewClient(o).Get(r.url(t, "siem.example.com", "/"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v, want a timeout", err)
	}
}
