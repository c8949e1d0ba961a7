package outbound

import (
	"net/netip"
)

// Class is what an IP address is, for the policy of where the control
// plane may connect on a customer's behalf.
type Class int

// The classes, from the only one always allowed to those always refused.
const (
	// Public is a globally routable unicast address: always allowed.
	Public Class = iota
	// Private is RFC 1918, shared address space (100.64.0.0/10) and IPv6
	// unique local (fc00::/7): allowed only with AllowPrivate.
	Private
	// Loopback is 127.0.0.0/8 and ::1: allowed only with AllowPrivate.
	Loopback
	// LinkLocal is 169.254.0.0/16 and fe80::/10: always refused, because
	// cloud platforms serve credentials there.
	LinkLocal
	// Metadata is a cloud instance-metadata or platform address outside
	// link-local (fd00:ec2::254, 100.100.100.200, 168.63.129.16) and
	// 169.254.169.254 itself: always refused.
	Metadata
	// Unspecified is 0.0.0.0 and ::, which a dial turns into loopback.
	Unspecified
	// Multicast is 224.0.0.0/4 and ff00::/8.
	Multicast
	// Broadcast is 255.255.255.255.
	Broadcast
	// Reserved is the rest that is not public unicast: documentation and
	// benchmarking ranges, "this network", 240.0.0.0/4, IETF protocol
	// assignments, deprecated or local-use IPv6 prefixes, zoned addresses.
	Reserved
)

var classNames = [...]string{"public", "private", "loopback", "link-local", "cloud metadata", "unspecified", "multicast", "broadcast", "reserved"}

// String names the class in words fit for an error message.
func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "unknown"
	}
	return classNames[c]
}

// Allowed reports whether the policy lets the control plane connect to
// an address of class c.
func (c Class) Allowed(allowPrivate bool) bool {
	switch c {
	case Public:
		return true
	case Private, Loopback:
		return allowPrivate
	default:
		return false
	}
}

// AddressError is the error of an address the policy refuses, whether
// written in an endpoint or found when dialing. Its message names the
// class, not the address.
type AddressError struct {
	Addr  netip.Addr
	Class Class
}

func (e *AddressError) Error() string {
	return "endpoint address is not allowed: " + e.Class.String() + " address"
}

// Check returns an *AddressError when the policy refuses addr, nil when
// it allows it.
func Check(addr netip.Addr, allowPrivate bool) error {
	if c := Classify(addr); !c.Allowed(allowPrivate) {
		return &AddressError{Addr: addr, Class: c}
	}
	return nil
}

type prefixClass struct {
	prefix netip.Prefix
	class  Class
}

func p(s string, c Class) prefixClass { return prefixClass{netip.MustParsePrefix(s), c} }

// metadata lists single addresses that are refused even where their
// range would be allowed: AWS's IPv6 instance metadata (in fc00::/7),
// Alibaba Cloud's (in 100.64.0.0/10), Azure's platform address (public
// space) and the common 169.254.169.254 (named here for the message).
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
	netip.MustParseAddr("168.63.129.16"),
}

// v4Ranges is IANA's IPv4 special-purpose registry, reduced to what is
// not public; the first match wins, so narrower prefixes come first.
var v4Ranges = []prefixClass{
	p("0.0.0.0/32", Unspecified),
	p("0.0.0.0/8", Reserved),
	p("10.0.0.0/8", Private),
	p("100.64.0.0/10", Private),
	p("127.0.0.0/8", Loopback),
	p("169.254.0.0/16", LinkLocal),
	p("172.16.0.0/12", Private),
	p("192.0.0.0/24", Reserved),
	p("192.0.2.0/24", Reserved),
	p("192.88.99.0/24", Reserved),
	p("192.168.0.0/16", Private),
	p("198.18.0.0/15", Reserved),
	p("198.51.100.0/24", Reserved),
	p("203.0.113.0/24", Reserved),
	p("224.0.0.0/4", Multicast),
	p("255.255.255.255/32", Broadcast),
	p("240.0.0.0/4", Reserved),
}

// v6Ranges is the IPv6 counterpart. Anything outside 2000::/3 (global
// unicast) that no row names is Reserved too.
var v6Ranges = []prefixClass{
	p("::/128", Unspecified),
	p("::1/128", Loopback),
	p("::/96", Reserved), // IPv4-compatible, deprecated
	p("64:ff9b:1::/48", Reserved),
	p("100::/64", Reserved),
	p("2001::/23", Reserved), // IETF protocol assignments, Teredo among them
	p("2001:db8::/32", Reserved),
	p("3fff::/20", Reserved),
	p("5f00::/16", Reserved),
	p("fc00::/7", Private),
	p("fe80::/10", LinkLocal),
	p("fec0::/10", Reserved),
	p("ff00::/8", Multicast),
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	global6   = netip.MustParsePrefix("2000::/3")
)

// Classify says what addr is. An IPv6 address that carries an IPv4 one
// (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4
// 2002:aabb:ccdd::) is classified by the IPv4 address it reaches.
func Classify(addr netip.Addr) Class {
	if !addr.IsValid() {
		return Reserved
	}
	if addr.Zone() != "" {
		if addr.WithZone("").IsLinkLocalUnicast() || addr.WithZone("").IsLinkLocalMulticast() {
			return LinkLocal
		}
		return Reserved
	}
	if addr.Is4In6() {
		return Classify(addr.Unmap())
	}
	for _, m := range metadata {
		if addr == m {
			return Metadata
		}
	}
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64.Contains(addr):
			return Classify(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(addr):
			return Classify(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	ranges := v4Ranges
	if addr.Is6() {
		ranges = v6Ranges
	}
	for _, r := range ranges {
		if r.prefix.Contains(addr) {
			return r.class
		}
	}
	if addr.Is6() && !global6.Contains(addr) {
		return Reserved
	}
	return Public
}
