package tcpcopy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ParseFilter compiles a session filter. The language is small:
//
//	port N | port N-M         the server port
//	client A | client A/len   the client address (or prefix)
//	server A | server A/len   the server address (or prefix)
//	host A | host A/len       either address
//	not TERM
//	TERM and TERM, TERM or TERM   (and binds tighter than or)
//
// An empty expression accepts every session.
func ParseFilter(expr string) (func(client, server netip.AddrPort) bool, error) {
	toks := strings.Fields(expr)
	if len(toks) == 0 {
		return func(netip.AddrPort, netip.AddrPort) bool { return true }, nil
	}
	var ors [][]func(c, s netip.AddrPort) bool
	var ands []func(c, s netip.AddrPort) bool
	i := 0
	for {
		neg := false
		for i < len(toks) && toks[i] == "not" {
			neg = !neg
			i++
		}
		if i+1 >= len(toks) {
			return nil, fmt.Errorf("filter %q: expected a term like \"port 80\" or \"client 10.0.0.0/8\" at the end", expr)
		}
		kw, arg := toks[i], toks[i+1]
		i += 2
		var term func(c, s netip.AddrPort) bool
		switch kw {
		case "port":
			lo, hi, err := parsePortRange(arg)
			if err != nil {
				return nil, fmt.Errorf("filter %q: %v", expr, err)
			}
			term = func(c, s netip.AddrPort) bool { return s.Port() >= lo && s.Port() <= hi }
		case "client", "server", "host", "src", "dst":
			pfx, err := parsePrefix(arg)
			if err != nil {
				return nil, fmt.Errorf("filter %q: %v", expr, err)
			}
			switch kw {
			case "client", "src":
				term = func(c, s netip.AddrPort) bool { return pfx.Contains(c.Addr().Unmap()) }
			case "server", "dst":
				term = func(c, s netip.AddrPort) bool { return pfx.Contains(s.Addr().Unmap()) }
			default:
				term = func(c, s netip.AddrPort) bool {
					return pfx.Contains(c.Addr().Unmap()) || pfx.Contains(s.Addr().Unmap())
				}
			}
		default:
			return nil, fmt.Errorf("filter %q: unknown term %q (want port, client, server, host, not, and, or)", expr, kw)
		}
		if neg {
			inner := term
			term = func(c, s netip.AddrPort) bool { return !inner(c, s) }
		}
		ands = append(ands, term)
		if i == len(toks) {
			break
		}
		switch toks[i] {
		case "and", "&&":
		case "or", "||":
			ors = append(ors, ands)
			ands = nil
		default:
			return nil, fmt.Errorf("filter %q: expected \"and\" or \"or\" before %q", expr, toks[i])
		}
		i++
	}
	ors = append(ors, ands)
	return func(c, s netip.AddrPort) bool {
		for _, conj := range ors {
			ok := true
			for _, t := range conj {
				if !t(c, s) {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
		return false
	}, nil
}

func parsePortRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	x, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("bad port %q", s)
	}
	y := x
	if isRange {
		if y, err = strconv.ParseUint(b, 10, 16); err != nil || y < x {
			return 0, 0, fmt.Errorf("bad port range %q", s)
		}
	}
	return uint16(x), uint16(y), nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// PortMap maps captured server ports to replay targets, like tcpcopy's
// -x option: "80-127.0.0.1:8080" sends sessions to server port 80 to
// 127.0.0.1:8080; "127.0.0.1:8080" alone sends every session there.
// Entries may be separated by commas.
type PortMap struct {
	byPort map[uint16]string
	any    string
}

// Set adds entries; it makes *PortMap a flag.Value.
func (m *PortMap) Set(v string) error {
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		port, target, hasPort := strings.Cut(e, "-")
		if hasPort {
			if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				hasPort = false
			}
		}
		if !hasPort {
			target = e
		}
		host, tport, err := net.SplitHostPort(target)
		if err != nil || host == "" {
			return fmt.Errorf("bad mapping %q: want PORT-HOST:PORT or HOST:PORT (IPv6 as [::1]:8080)", e)
		}
		if _, err := strconv.ParseUint(tport, 10, 16); err != nil {
			return fmt.Errorf("bad mapping %q: bad target port %q", e, tport)
		}
		if !hasPort {
			m.any = target
			continue
		}
		p, _ := strconv.ParseUint(port, 10, 16)
		if m.byPort == nil {
			m.byPort = map[uint16]string{}
		}
		m.byPort[uint16(p)] = target
	}
	return nil
}

// String lists the mappings.
func (m *PortMap) String() string {
	if m == nil {
		return ""
	}
	var parts []string
	for p, t := range m.byPort {
		parts = append(parts, fmt.Sprintf("%d-%s", p, t))
	}
	if m.any != "" {
		parts = append(parts, m.any)
	}
	return strings.Join(parts, ",")
}

// Empty reports whether no mapping was given.
func (m *PortMap) Empty() bool { return m.any == "" && len(m.byPort) == 0 }

// Ports returns the mapped server ports.
func (m *PortMap) Ports() []uint16 {
	var ps []uint16
	for p := range m.byPort {
		ps = append(ps, p)
	}
	return ps
}

// Target returns where to replay s.
func (m *PortMap) Target(s *Session) (string, bool) {
	if t, ok := m.byPort[s.Server.Port()]; ok {
		return t, true
	}
	if m.any != "" {
		return m.any, true
	}
	return "", false
}
