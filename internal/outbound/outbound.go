// Package outbound is the only way the control plane makes a request to
// an address a customer chose (an audit stream's SIEM or webhook): it
// validates the endpoint as written, and its client checks every address
// it actually dials, so that neither a name resolving inside nor DNS
// rebinding between validation and delivery reaches loopback, private,
// link-local or cloud-metadata addresses.
package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Resolver looks up a host's addresses; *net.Resolver is one. Tests give
// their own to play DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Default timeouts of a client; Options override each.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 5 * time.Second
	DefaultResponseHeaderTimeout = 10 * time.Second
	DefaultTimeout               = 30 * time.Second
)

// maxResponseHeaderBytes bounds a receiver's response headers.
const maxResponseHeaderBytes = 64 << 10

// Options configure a client. The zero value is production's: public
// addresses only, https only, the system resolver, default timeouts.
type Options struct {
	// AllowPrivate lets the client reach loopback and private addresses
	// and use plain http (CP_STREAM_ALLOW_PRIVATE, for dev and tests).
	// Link-local and metadata addresses stay refused.
	AllowPrivate bool
	// Resolver replaces net.DefaultResolver.
	Resolver Resolver
	// DialTimeout bounds each connection attempt; TLSHandshakeTimeout the
	// handshake; ResponseHeaderTimeout the wait for the status line after
	// the request is sent; Timeout the whole request, body read included
	// (a slow-drip body is cut by it).
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	Timeout               time.Duration
	// TLSConfig replaces the default (system roots, TLS 1.2 or later);
	// tests pass one that trusts their server.
	TLSConfig *tls.Config
}

func (o Options) resolver() Resolver {
	if o.Resolver != nil {
		return o.Resolver
	}
	return net.DefaultResolver
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ErrSchemeNotAllowed is the error of a request whose URL is not https
// (or http with AllowPrivate).
var ErrSchemeNotAllowed = errors.New("endpoint must use https")

// NewClient returns the client for customers' endpoints: no proxy (never
// the environment's), no redirects followed (the caller sees the 3xx),
// bounded timeouts, and a dialer that resolves the host itself and
// refuses, at connect time, any address the policy does not allow.
func NewClient(o Options) *http.Client {
	d := &dialer{
		resolver:     o.resolver(),
		allowPrivate: o.AllowPrivate,
		net: net.Dialer{
			Timeout:   orDefault(o.DialTimeout, DefaultDialTimeout),
			KeepAlive: 30 * time.Second,
		},
	}
	d.net.Control = control(o.AllowPrivate)
	tlsConfig := o.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        tlsConfig,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    orDefault(o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout),
		ResponseHeaderTimeout:  orDefault(o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout),
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		DisableCompression:     true,
	}
	return &http.Client{
		Transport: &schemeGuard{next: t, allowHTTP: o.AllowPrivate},
		Timeout:   orDefault(o.Timeout, DefaultTimeout),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// control is the last word: whatever the dial resolved, the address
// handed to the socket is checked before connect.
func control(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &AddressError{Class: Reserved}
		}
		return Check(ap.Addr(), allowPrivate)
	}
}

// schemeGuard refuses a request that is not https (http too with
// AllowPrivate) before anything is dialed.
type schemeGuard struct {
	next      http.RoundTripper
	allowHTTP bool
}

func (g *schemeGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" && !(g.allowHTTP && r.URL.Scheme == "http") {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, ErrSchemeNotAllowed
	}
	return g.next.RoundTrip(r)
}

// dialer resolves a host itself, keeps the addresses the policy allows and
// dials them in turn; its net.Dialer's Control checks each again.
type dialer struct {
	resolver     Resolver
	allowPrivate bool
	net          net.Dialer
}

func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ipNet := "ip"
		switch network {
		case "tcp4":
			ipNet = "ip4"
		case "tcp6":
			ipNet = "ip6"
		}
		if addrs, err = d.resolver.LookupNetIP(ctx, ipNet, host); err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
	}
	var firstErr error
	for _, a := range addrs {
		if err := Check(a, d.allowPrivate); err != nil {
			if firstErr == nil {
				firstErr = &net.OpError{Op: "dial", Net: network, Err: err}
			}
			continue
		}
		conn, err := d.net.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil || isAddressError(firstErr) {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if firstErr == nil {
		firstErr = &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}}
	}
	return nil, firstErr
}

func isAddressError(err error) bool {
	var ae *AddressError
	return errors.As(err, &ae)
}
