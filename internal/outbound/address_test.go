package outbound

import (
	"errors"
	"net/netip"
	"testing"
)

func TestClassifySaysWhatEachAddressIs(t *testing.T) {
	cases := []struct {
		addr string
		want Class
	}{
		{"93.184.216.34", Public},
		{"8.8.8.8", Public},
		{"2606:4700:4700::1111", Public},
		{"64:ff9b::808:808", Public}, // NAT64 form of 8.8.8.8
		{"2002:808:808::1", Public},  // 6to4 form of 8.8.8.8

		{"127.0.0.1", Loopback},
		{"127.255.0.9", Loopback},
		{"::1", Loopback},
		{"::ffff:127.0.0.1", Loopback},
		{"64:ff9b::7f00:1", Loopback},
		{"2002:7f00:1::", Loopback},

		{"10.1.2.3", Private},
		{"172.16.0.1", Private},
		{"172.31.255.255", Private},
		{"192.168.1.1", Private},
		{"100.64.0.1", Private},
		{"100.127.255.254", Private},
		{"fd12:3456::1", Private},
		{"fc00::1", Private},
		{"::ffff:10.0.0.1", Private},
		{"64:ff9b::a00:1", Private},

		{"169.254.0.1", LinkLocal},
		{"169.254.170.2", LinkLocal},
		{"fe80::1", LinkLocal},
		{"fe80::1%eth0", LinkLocal},
		{"::ffff:169.254.1.1", LinkLocal},

		{"169.254.169.254", Metadata},
		{"::ffff:169.254.169.254", Metadata},
		{"64:ff9b::a9fe:a9fe", Metadata},
		{"2002:a9fe:a9fe::", Metadata},
		{"fd00:ec2::254", Metadata},
		{"100.100.100.200", Metadata},
		{"168.63.129.16", Metadata},

		{"0.0.0.0", Unspecified},
		{"::", Unspecified},
		{"::ffff:0.0.0.0", Unspecified},

		{"224.0.0.1", Multicast},
		{"239.255.255.250", Multicast},
		{"ff02::1", Multicast},
		{"255.255.255.255", Broadcast},

		{"0.1.2.3", Reserved},
		{"192.0.0.8", Reserved},
		{"192.0.2.1", Reserved},
		{"198.18.0.1", Reserved},
		{"198.51.100.7", Reserved},
		{"203.0.113.9", Reserved},
		{"240.0.0.1", Reserved},
		{"192.88.99.1", Reserved},
		{"2001:db8::1", Reserved},
		{"3fff::1", Reserved},
		{"2001::1", Reserved}, // Teredo
		{"64:ff9b:1::1", Reserved},
		{"100::1", Reserved},
		{"::7f00:1", Reserved}, // IPv4-compatible, deprecated
		{"fec0::1", Reserved},
		{"4000::1", Reserved}, // outside global unicast
	}
	for _, c := range cases {
		if got := Classify(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Classify(%s) = %s, want %s", c.addr, got, c.want)
		}
	}
	if got := Classify(netip.Addr{}); got != Reserved {
		t.Errorf("the zero Addr is %s, want reserved", got)
	}
}

func TestOnlyPrivateAndLoopbackAreLiftedByAllowPrivate(t *testing.T) {
	cases := []struct {
		class                     Class
		allowed, withAllowPrivate bool
	}{
		{Public, true, true},
		{Private, false, true},
		{Loopback, false, true},
		{LinkLocal, false, false},
		{Metadata, false, false},
		{Unspecified, false, false},
		{Multicast, false, false},
		{Broadcast, false, false},
		{Reserved, false, false},
	}
	for _, c := range cases {
		if got := c.class.Allowed(false); got != c.allowed {
			t.Errorf("%s allowed = %v, want %v", c.class, got, c.allowed)
		}
		if got := c.class.Allowed(true); got != c.withAllowPrivate {
			t.Errorf("%s allowed with AllowPrivate = %v, want %v", c.class, got, c.withAllowPrivate)
		}
	}
}

func TestCheckRefusesWithAnAddressErrorThatNamesTheClass(t *testing.T) {
	err := Check(netip.MustParseAddr("::ffff:127.0.0.1"), false)
	var ae *AddressError
	if !errors.As(err, &ae) || ae.Class != Loopback {
		t.Fatalf("Check(::ffff:127.0.0.1) = %v, want a loopback AddressError", err)
	}
	if got, want := err.Error(), "endpoint address is not allowed: loopback address"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if err := Check(netip.MustParseAddr("169.254.169.254"), true); err == nil {
		t.Error("the metadata address is allowed with AllowPrivate")
	}
	if err := Check(netip.MustParseAddr("::ffff:127.0.0.1"), true); err != nil {
		t.Errorf("mapped loopback refused with AllowPrivate: %v", err)
	}
	if err := Check(netip.MustParseAddr("93.184.216.34"), false); err != nil {
		t.Errorf("a public address is refused: %v", err)
	}
}
