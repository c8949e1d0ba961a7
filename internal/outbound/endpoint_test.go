package outbound

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValidateEndpointAcceptsHTTPSToAPublicHost(t *testing.T) {
	for _, raw := range []string{
		"https://siem.example.com/hooks/audit",
		"https://splunk.example.com:8088/services/collector/event",
		"https://http-intake.logs.datadoghq.eu/api/v2/logs?ddtags=env:prod",
		"https://93.184.216.34/in",
		"https://[2606:4700:4700::1111]:8443/in",
		"https://xn--bcher-kva.example/in",
		"https://under_score.example.com/",
	} {
		u, err := ValidateEndpoint(raw, false)
		if err != nil {
			t.Errorf("ValidateEndpoint(%q) = %v, want accepted", raw, err)
			continue
		}
		if u.String() != raw {
			t.Errorf("ValidateEndpoint(%q) = %s", raw, u)
		}
	}
}

func TestValidateEndpointRefusesWithAMessageThatSaysWhatIsWrong(t *testing.T) {
	cases := []struct {
		raw, want    string
		allowPrivate bool
	}{
		{"", "endpoint is required", false},
		{"https://example.com/" + strings.Repeat("a", MaxEndpointLength), "endpoint is too long (at most 2048 characters)", false},
		{"http://siem.example.com/", "endpoint must use https", false},
		{"ftp://siem.example.com/", "endpoint must use https", true},
		{"siem.example.com/in", "endpoint must be an absolute URL starting with https://", false},
		{"https://user:pw@siem.example.com/", "endpoint must not contain a user name or password: pass a credential instead", false},
		{"https://siem.example.com/#frag", "endpoint must not contain a fragment (#…)", false},
		{"https://siem.example.com/#", "endpoint must not contain a fragment (#…)", false},
		{"https:///in", "endpoint must name a host", false},
		{"https://siem.example.com:0/", "endpoint port must be between 1 and 65535", false},
		{"https://siem.example.com:70000/", "endpoint port must be between 1 and 65535", false},
		{"https://siem.example.com:/", "endpoint port must be between 1 and 65535", false},
		{"https://siem example.com/", "endpoint must not contain spaces or backslashes", false},
		{"https://siem.example.com\\@evil/", "endpoint must not contain spaces or backslashes", false},
		{"https://%zz/", "endpoint is not a valid URL", false},
		{"https:opaque", "endpoint is not a valid URL", false},
		{"https://127.0.0.1/", "endpoint address is not allowed: loopback address", false},
		{"https://[::ffff:127.0.0.1]/", "endpoint address is not allowed: loopback address", false},
		{"https://10.0.0.1/", "endpoint address is not allowed: private address", false},
		{"https://169.254.169.254/latest/meta-data/", "endpoint address is not allowed: cloud metadata address", true},
		{"https://[fd00:ec2::254]/", "endpoint address is not allowed: cloud metadata address", true},
		{"https://[fe80::1%25eth0]/", "endpoint address is not allowed: link-local address", true},
		{"https://0.0.0.0/", "endpoint address is not allowed: unspecified address", true},
		{"https://localhost:8443/", "endpoint address is not allowed: loopback address", false},
		{"https://api.localhost/", "endpoint address is not allowed: loopback address", false},
		{"https://127.1/", "endpoint host is not a valid host name or IP address", true},
		{"https://2130706433/", "endpoint host is not a valid host name or IP address", true},
		{"https://0x7f.0x1/", "endpoint host is not a valid host name or IP address", true},
		{"https://bücher.example/", "endpoint host must be written in ASCII (use its xn-- form)", false},
		{"https://-bad.example.com/", "endpoint host is not a valid host name", false},
		{"https://a..example.com/", "endpoint host is not a valid host name", false},
		{"https://[example.com]/", "endpoint is not a valid URL", false},
	}
	for _, c := range cases {
		_, err := ValidateEndpoint(c.raw, c.allowPrivate)
		if err == nil {
			t.Errorf("ValidateEndpoint(%q, %v) accepted it, want %q", c.raw, c.allowPrivate, c.want)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("ValidateEndpoint(%q, %v) = %q, want %q", c.raw, c.allowPrivate, err, c.want)
		}
		if !errors.Is(err, ErrInvalidEndpoint) {
			t.Errorf("ValidateEndpoint(%q): %v is not ErrInvalidEndpoint", c.raw, err)
		}
	}
}

func TestAllowPrivateLiftsPlainHTTPLoopbackAndPrivateOnly(t *testing.T) {
	for _, raw := range []string{"http://127.0.0.1:8080/in", "http://localhost:9000/", "https://10.1.2.3/", "http://[::1]:80/"} {
		if _, err := ValidateEndpoint(raw, true); err != nil {
			t.Errorf("ValidateEndpoint(%q, true) = %v, want accepted", raw, err)
		}
	}
}

// resolverFunc plays DNS in tests.
type resolverFunc func(host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f(host)
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestCheckHostRefusesANameWithAnyForbiddenAddress(t *testing.T) {
	dns := resolverFunc(func(host string) ([]netip.Addr, error) {
		switch host {
		case "public.example":
			return addrs("93.184.216.34"), nil
		case "mixed.example":
			return addrs("93.184.216.34", "10.0.0.7"), nil
		}
		return addrs("169.254.169.254"), nil
	})
	ctx := context.Background()
	if err := CheckHost(ctx, "public.example", Options{Resolver: dns}); err != nil {
		t.Errorf("public.example: %v", err)
	}
	var ae *AddressError
	if err := CheckHost(ctx, "mixed.example", Options{Resolver: dns}); !errors.As(err, &ae) || ae.Class != Private {
		t.Errorf("mixed.example: %v, want a private AddressError", err)
	}
	if err := CheckHost(ctx, "mixed.example", Options{Resolver: dns, AllowPrivate: true}); err != nil {
		t.Errorf("mixed.example with AllowPrivate: %v", err)
	}
	if err := CheckHost(ctx, "metadata.example", Options{Resolver: dns, AllowPrivate: true}); !errors.As(err, &ae) || ae.Class != Metadata {
		t.Errorf("metadata.example: %v, want a metadata AddressError", err)
	}
}
