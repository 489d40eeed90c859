package ustack

import (
	"net/netip"
	"sort"

	"github.com/ustack/ustack/tcp"
)

// ConnInfo describes one connection or listener, like a line of `ss -tai`.
type ConnInfo struct {
	Local, Remote netip.AddrPort // Remote is the zero value for listeners
	State         tcp.State
	Info          tcp.Info // only State is set for listeners
	// RecvQ and SendQ are ss's Recv-Q and Send-Q: unread bytes and bytes
	// not yet acknowledged (for listeners: accept queue length and
	// backlog).
	RecvQ, SendQ int
}

// Connections returns every connection (any state, including TIME-WAIT)
// and listener of the stack, sorted by local then remote address.
func (s *Stack) Connections() []ConnInfo {
	t := s.tcp
	t.mu.RLock()
	es := make([]*endpoint, 0, len(t.conns))
	for _, e := range t.conns {
		es = append(es, e)
	}
	var out []ConnInfo
	for k, l := range t.listeners {
		out = append(out, ConnInfo{
			Local: netip.AddrPortFrom(k.addr, k.port), State: tcp.Listen, Info: tcp.Info{State: tcp.Listen},
			RecvQ: len(l.acceptq), SendQ: l.backlog,
		})
	}
	t.mu.RUnlock()
	for _, e := range es {
		e.sh.mu.Lock()
		info := e.tc.Info()
		ci := ConnInfo{Local: e.tuple.Local, Remote: e.tuple.Remote, State: e.tc.State(), Info: info,
			RecvQ: e.tc.Readable(), SendQ: int(info.SndNxt - info.SndUna)}
		e.sh.mu.Unlock()
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Local.Compare(out[j].Local); c != 0 {
			return c < 0
		}
		return out[i].Remote.Compare(out[j].Remote) < 0
	})
	return out
}
