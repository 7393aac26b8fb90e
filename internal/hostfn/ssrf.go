package hostfn

import (
	"fmt"
	"net/netip"
)

// addressRange is one special-purpose block that http_fetch never connects
// to unless AEROFN_FETCH_ALLOW_PRIVATE is set.
type addressRange struct {
	prefix netip.Prefix
	name   string
	rfc    string
}

func r(p, name, rfc string) addressRange {
	return addressRange{prefix: netip.MustParsePrefix(p), name: name, rfc: rfc}
}

// specialPurpose is every block of the IANA IPv4 Special-Purpose Address
// Registry (iana-ipv4-special-registry) and the IANA IPv6 Special-Purpose
// Address Registry (iana-ipv6-special-registry), plus multicast and the
// deprecated IPv6 forms that still route somewhere private. Blocks the
// registries mark "globally reachable" (AS112, anycast relays, NAT64) are
// refused too: a function has no business talking to DNS sinks or to
// translators that reach back into IPv4 space. Sub-blocks of a listed block
// (192.0.0.0/29 inside 192.0.0.0/24, TEREDO inside 2001::/23) are covered by
// the enclosing entry.
var specialPurpose = []addressRange{
	// IPv4 special-purpose registry.
	r("0.0.0.0/8", `"This network"`, "RFC 791"),
	r("10.0.0.0/8", "Private-Use", "RFC 1918"),
	r("100.64.0.0/10", "Shared Address Space (carrier-grade NAT; cloud metadata such as 100.100.100.200)", "RFC 6598"),
	r("127.0.0.0/8", "Loopback", "RFC 1122"),
	r("169.254.0.0/16", "Link Local (cloud metadata at 169.254.169.254)", "RFC 3927"),
	r("172.16.0.0/12", "Private-Use", "RFC 1918"),
	r("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890"),
	r("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737"),
	r("192.31.196.0/24", "AS112-v4", "RFC 7535"),
	r("192.52.193.0/24", "AMT", "RFC 7450"),
	r("192.88.99.0/24", "Deprecated 6to4 Relay Anycast", "RFC 7526"),
	r("192.168.0.0/16", "Private-Use", "RFC 1918"),
	r("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534"),
	r("198.18.0.0/15", "Benchmarking", "RFC 2544"),
	r("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737"),
	r("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737"),
	r("240.0.0.0/4", "Reserved (includes Limited Broadcast 255.255.255.255)", "RFC 1112"),
	// IPv4 multicast (its own registry).
	r("224.0.0.0/4", "Multicast", "RFC 5771"),

	// IPv6 special-purpose registry.
	r("::/128", "Unspecified Address", "RFC 4291"),
	r("::1/128", "Loopback Address", "RFC 4291"),
	// ::ffff:0:0/96, IPv4-mapped (RFC 4291), reaches the IPv4 address it
	// carries: checkPublic unmaps it and judges that address.
	r("64:ff9b::/96", "IPv4-IPv6 Translation (NAT64 well-known prefix)", "RFC 6052"),
	r("64:ff9b:1::/48", "IPv4-IPv6 Translation (local use)", "RFC 8215"),
	r("100::/64", "Discard-Only Address Block", "RFC 6666"),
	r("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780"),
	r("2001::/23", "IETF Protocol Assignments (TEREDO, benchmarking, AMT, AS112, ORCHID, DET)", "RFC 2928"),
	r("2001:db8::/32", "Documentation", "RFC 3849"),
	r("2002::/16", "6to4", "RFC 3056"),
	r("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534"),
	r("3fff::/20", "Documentation", "RFC 9637"),
	r("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602"),
	r("fc00::/7", "Unique-Local", "RFC 4193"),
	r("fe80::/10", "Link-Local Unicast", "RFC 4291"),
	// Deprecated forms and multicast, outside the registry but still private.
	r("::/96", "IPv4-Compatible Address (deprecated)", "RFC 4291"),
	r("fec0::/10", "Site-Local (deprecated)", "RFC 3879"),
	r("ff00::/8", "Multicast", "RFC 4291"),
}

// checkPublic refuses an address in any special-purpose block. An
// IPv4-mapped address is what the kernel connects to as IPv4, so it is
// judged by the IPv4 address it carries.
func checkPublic(ip netip.Addr) error {
	a := ip.WithZone("").Unmap()
	for _, sp := range specialPurpose {
		if sp.prefix.Contains(a) {
			return fmt.Errorf("address %s is not public: %s %s (%s)", ip, sp.prefix, sp.name, sp.rfc)
		}
	}
	if !a.IsValid() {
		return fmt.Errorf("address %s is not public: not an IP address", ip)
	}
	return nil
}
