package api

import (
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// forwardedClient makes c.IP() the client behind trusted proxies. Fiber
// trusts X-Forwarded-For only from a peer in TrustedProxies, but then takes
// its first valid entry, which is whatever the client wrote: a proxy
// appends the address it got the request from, it does not replace the
// header. So the header is walked from the right, past the trusted
// proxies, to the first address that is not one (or an entry that is no
// address, where the walk stops at the last proxy), and replaced with that
// address alone. From an untrusted peer the header is left as it is, and
// Fiber ignores it.
func (s *Server) forwardedClient(c *fiber.Ctx) error {
	if len(s.trustedProxies) == 0 || !c.IsProxyTrusted() {
		return c.Next()
	}
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.Next()
	}
	var hops []string
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(v), ",")...)
	}
	client := peer.Unmap()
	for i := len(hops) - 1; i >= 0 && s.trusted(client); i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap()
	}
	c.Request().Header.Set(fiber.HeaderXForwardedFor, client.String())
	return c.Next()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
