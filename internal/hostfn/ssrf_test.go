package hostfn

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Every special-purpose range of the IANA IPv4 and IPv6 registries is refused
// at connect time: its first, a middle and its last address, as literals in
// the URL (a name resolving there takes the same path through the dialer),
// also when written IPv4-mapped or NAT64-embedded.
func TestFetchRefusesSpecialPurposeRanges(t *testing.T) {
	f := NewFetcher(FetcherConfig{MaxDuration: 300 * time.Millisecond})
	addrs := []string{
		"0.0.0.0", "0.1.2.3", "0.255.255.255",
		"10.0.0.0", "10.20.30.40", "10.255.255.255",
		"100.64.0.0", "100.100.100.200", "100.127.255.255", // shared address space; Alibaba Cloud's metadata service
		"127.0.0.1", "127.255.255.255",
		"169.254.0.0", "169.254.169.254", "169.254.255.255",
		"172.16.0.0", "172.31.255.255",
		"192.0.0.0", "192.0.0.9", "192.0.0.170", "192.0.0.255",
		"192.0.2.0", "192.0.2.255",
		"192.31.196.0", "192.31.196.255",
		"192.52.193.0", "192.52.193.255",
		"192.88.99.0", "192.88.99.255",
		"192.168.0.0", "192.168.255.255",
		"192.175.48.0", "192.175.48.255",
		"198.18.0.0", "198.19.255.255",
		"198.51.100.0", "198.51.100.255",
		"203.0.113.0", "203.0.113.255",
		"224.0.0.1", "239.255.255.255",
		"240.0.0.0", "250.1.2.3", "255.255.255.255",
		"::", "::1", "::127.0.0.1",
		"::ffff:127.0.0.1", "::ffff:100.100.100.200", "::ffff:198.18.0.1", "::ffff:240.0.0.1", "::ffff:10.0.0.1",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::808:808", "64:ff9b::ffff:ffff",
		"64:ff9b:1::1", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
		"100::", "100::ffff:ffff:ffff:ffff", "100:0:0:1::1",
		"2001::", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:1::1", "2001:2::1", "2001:3::1", "2001:4:112::1",
		"2001:10::1", "2001:20::1", "2001:30::1", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
		"2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
		"2002::1", "2002:7f00:1::1", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"2620:4f:8000::1", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff",
		"3fff::1", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
		"5f00::1", "5f00:ffff::1",
		"fc00::1", "fd00:ec2::254", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"fe80::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::1",
		"ff02::1", "ff0e::1",
	}
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		host := a
		if ip.Is6() {
			host = "[" + a + "]"
		}
		r := fetch(t, f, []string{a}, map[string]any{"url": "http://" + host + ":9/"})
		if r.Error == nil || r.Error.Code != "fetch_failed" || !strings.Contains(r.Error.Message, "not public") {
			t.Errorf("%s: reached or failed otherwise: %+v", a, r.Error)
		}
	}
}

// Addresses just outside each range stay reachable.
func TestPublicAddressesAllowed(t *testing.T) {
	for _, a := range []string{
		"1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255",
		"169.253.255.255", "172.15.255.255", "172.32.0.0", "192.0.1.0", "192.0.3.0", "192.88.98.255", "192.167.255.255",
		"198.17.255.255", "198.20.0.0", "203.0.114.0", "223.255.255.255", "::ffff:8.8.8.8",
		"2606:4700:4700::1111", "2001:200::1", "2001:4860:4860::8888", "2a00:1450:4001::1", "64:ff9a:ffff::1", "64:ff9b:2::1",
	} {
		if err := checkPublic(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
}

// The table itself: every entry is a valid, canonical prefix with a source.
func TestSpecialPurposeTable(t *testing.T) {
	for _, r := range specialPurpose {
		if r.prefix != r.prefix.Masked() || r.name == "" || !strings.HasPrefix(r.rfc, "RFC") {
			t.Errorf("bad entry %+v", r)
		}
	}
}
