package outbound

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxEndpointLength bounds an endpoint URL, in bytes.
const MaxEndpointLength = 2048

// ErrInvalidEndpoint is what every error of ValidateEndpoint is (errors.Is),
// so a caller can answer it as bad input. Each error's own message says
// what is wrong, in words fit for an API's 400.
var ErrInvalidEndpoint = errors.New("invalid endpoint")

type endpointError struct{ msg string }

func (e *endpointError) Error() string        { return e.msg }
func (e *endpointError) Is(target error) bool { return target == ErrInvalidEndpoint }

func invalid(msg string) error { return &endpointError{msg: msg} }

// ValidateEndpoint parses an address a customer chose and checks what can
// be checked without the network: https (plain http only when
// allowPrivate), no user name or password, a host that is a DNS name or an
// IP address the policy allows, a port in range, no fragment, a bounded
// length. A host name's addresses are checked when dialed (NewClient),
// at each delivery, so that DNS cannot change the answer afterwards.
func ValidateEndpoint(raw string, allowPrivate bool) (*url.URL, error) {
	if raw == "" {
		return nil, invalid("endpoint is required")
	}
	if len(raw) > MaxEndpointLength {
		return nil, invalid("endpoint is too long (at most " + strconv.Itoa(MaxEndpointLength) + " characters)")
	}
	if strings.ContainsAny(raw, " \t\r\n\\") {
		return nil, invalid("endpoint must not contain spaces or backslashes")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return nil, invalid("endpoint is not a valid URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowPrivate {
			return nil, invalid("endpoint must use https")
		}
	case "":
		return nil, invalid("endpoint must be an absolute URL starting with https://")
	default:
		return nil, invalid("endpoint must use https")
	}
	if u.User != nil {
		return nil, invalid("endpoint must not contain a user name or password: pass a credential instead")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, invalid("endpoint must not contain a fragment (#…)")
	}
	host := u.Hostname()
	if host == "" {
		return nil, invalid("endpoint must name a host")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, invalid("endpoint port must be between 1 and 65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, invalid("endpoint port must be between 1 and 65535")
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if err := Check(addr, allowPrivate); err != nil {
			return nil, invalid(err.Error())
		}
		return u, nil
	}
	if err := checkHostName(host, allowPrivate); err != nil {
		return nil, err
	}
	return u, nil
}

// checkHostName accepts a DNS name of letters, digits, hyphens and
// underscores (punycode for international names), refusing forms a
// resolver might read as an IPv4 address (127.1, 0x7f.1, 2130706433) and,
// without allowPrivate, localhost names.
func checkHostName(host string, allowPrivate bool) error {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if len(name) > 253 {
		return invalid("endpoint host name is too long")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return invalid("endpoint host is not a valid host name")
		}
		for _, r := range l {
			ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_'
			if !ok {
				if r > 127 {
					return invalid("endpoint host must be written in ASCII (use its xn-- form)")
				}
				return invalid("endpoint host is not a valid host name")
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return invalid("endpoint host is not a valid host name")
		}
	}
	last := labels[len(labels)-1]
	if strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == "" {
		return invalid("endpoint host is not a valid host name or IP address")
	}
	if !allowPrivate && (name == "localhost" || strings.HasSuffix(name, ".localhost")) {
		return invalid("endpoint address is not allowed: loopback address")
	}
	return nil
}

// CheckHost resolves host with o's resolver and returns an *AddressError
// when any of its addresses is refused, for an early answer when an
// endpoint is saved. It decides nothing for later: the client checks
// again at each dial.
func CheckHost(ctx context.Context, host string, o Options) error {
	if addr, err := netip.ParseAddr(host); err == nil {
		return Check(addr, o.AllowPrivate)
	}
	addrs, err := o.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := Check(a, o.AllowPrivate); err != nil {
			return err
		}
	}
	return nil
}
