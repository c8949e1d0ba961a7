package integration

import (
	"context"
	"net/netip"
	"testing"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

func TestTheClientAddressIsForwardedOnlyByTrustedProxies(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	user := w.People[domain.RoleViewer].Email
	proxy := newCaller("")
	base := servedAPI(t, api.Deps{TrustedProxies: []netip.Prefix{addrPrefix(t, proxy.Addr), netip.MustParsePrefix("10.0.0.0/8")}})
	proxy.base = base
	stranger := newCaller(base)

	tests := []struct {
		name      string
		from      caller
		forwarded string
		want      string
	}{
		{"a spoofed X-Forwarded-For from an untrusted peer is ignored", stranger, "203.0.113.9", stranger.Addr},
		{"a trusted proxy's X-Forwarded-For is used", proxy, "203.0.113.9", "203.0.113.9"},
		{"what the client wrote before the proxy's entry is ignored", proxy, "198.51.100.1, 203.0.113.9", "203.0.113.9"},
		{"a chain of trusted proxies is walked back to the client", proxy, "198.51.100.1,203.0.113.9, 10.1.2.3", "203.0.113.9"},
		{"an entry that is no address stops the walk at the proxy", proxy, "203.0.113.9, not-an-address", proxy.Addr},
		{"a trusted proxy without the header is the client", proxy, "", proxy.Addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]string{}
			if tt.forwarded != "" {
				header["X-Forwarded-For"] = tt.forwarded
			}
			r := tt.from.post(t, "/api/v1/auth/sign-in", map[string]any{"email": user, "password": testPassword}, header)
			if r.Status != 200 {
				t.Fatalf("sign-in: %d %s", r.Status, r.Raw)
			}
			var got string
			if err := h.DB.NewRaw("SELECT client_addr FROM audit_events WHERE request_id = ? AND action = 'user.signed_in'", r.Env.Meta.RequestID).Scan(context.Background(), &got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("client address = %q, want %q", got, tt.want)
			}
		})
	}
}

// addrPrefix is the single-address prefix of ip.
func addrPrefix(t *testing.T, ip string) netip.Prefix {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return netip.PrefixFrom(a, a.BitLen())
}
