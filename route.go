package ustack

import (
	"net/netip"
	"sort"
)

// route is one entry of the routing table.
type route struct {
	dst       netip.Prefix
	gw        netip.Addr // zero for connected routes
	ifc       *iface
	connected bool
}

// routeTable is immutable once published; writers copy it.
type routeTable struct {
	routes []route // sorted by prefix length, longest first
	local  map[netip.Addr]*iface
}

func (t *routeTable) clone() *routeTable {
	n := &routeTable{
		routes: append([]route(nil), t.routes...),
		local:  make(map[netip.Addr]*iface, len(t.local)),
	}
	for a, i := range t.local {
		n.local[a] = i
	}
	return n
}

func (t *routeTable) add(r route) {
	t.routes = append(t.routes, r)
	sort.SliceStable(t.routes, func(i, j int) bool {
		return t.routes[i].dst.Bits() > t.routes[j].dst.Bits()
	})
}

// lookup returns the longest-prefix match for dst.
func (t *routeTable) lookup(dst netip.Addr) (route, bool) {
	for _, r := range t.routes {
		if r.dst.Contains(dst) {
			return r, true
		}
	}
	return route{}, false
}

// sourceFor picks the source address for dst on the interface of route r:
// the interface address whose prefix contains dst (or the gateway), else the
// first address of the family.
func (r *route) sourceFor(dst netip.Addr) (netip.Addr, bool) {
	var first netip.Addr
	for _, p := range r.ifc.prefixes {
		if p.Addr().Is4() != dst.Is4() {
			continue
		}
		if p.Contains(dst) || (r.gw.IsValid() && p.Contains(r.gw)) {
			return p.Addr(), true
		}
		if !first.IsValid() {
			first = p.Addr()
		}
	}
	return first, first.IsValid()
}
