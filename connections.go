package ustack

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

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
	// Deadline is the engine's next timer (zero: none armed) and Scheduled
	// the time the stack's timer queue holds for the connection (zero: not
	// queued). They differ only transiently; a connection with data in
	// flight and neither set is stuck.
	Deadline, Scheduled time.Time
}

// String formats the entry like a line of `ss -tani`: state, queues,
// addresses, then for connections the tcp_info fields ss shows.
func (ci ConnInfo) String() string {
	st := ssState[ci.State]
	if st == "" {
		st = ci.State.String()
	}
	peer := "*:*"
	if ci.Remote.IsValid() {
		peer = ci.Remote.String()
	}
	line := fmt.Sprintf("%-10s %-6d %-6d %s %s", st, ci.RecvQ, ci.SendQ, ci.Local, peer)
	if ci.State == tcp.Listen {
		return line
	}
	i := &ci.Info
	line += fmt.Sprintf(" rto:%g rtt:%g/%g mss:%d cwnd:%d", ms(i.RTO), ms(i.RTT), ms(i.RTTVar), i.SndMSS, i.SndCwnd)
	if i.SndSsthresh > 0 && i.SndSsthresh < 1<<30 {
		line += fmt.Sprintf(" ssthresh:%d", i.SndSsthresh)
	}
	line += fmt.Sprintf(" bytes_sent:%d bytes_acked:%d bytes_received:%d segs_out:%d segs_in:%d",
		i.BytesSent, i.BytesAcked, i.BytesReceived, i.SegsOut, i.SegsIn)
	if i.TotalRetrans > 0 {
		line += fmt.Sprintf(" retrans:%d/%d", i.Retrans, i.TotalRetrans)
	}
	if i.PacingRate > 0 {
		line += fmt.Sprintf(" pacing_rate:%dbps", i.PacingRate*8)
	}
	return line
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var ssState = map[tcp.State]string{
	tcp.Established: "ESTAB", tcp.SynSent: "SYN-SENT", tcp.SynReceived: "SYN-RECV",
	tcp.FinWait1: "FIN-WAIT-1", tcp.FinWait2: "FIN-WAIT-2", tcp.TimeWait: "TIME-WAIT",
	tcp.Closed: "UNCONN", tcp.CloseWait: "CLOSE-WAIT", tcp.LastAck: "LAST-ACK",
	tcp.Listen: "LISTEN", tcp.Closing: "CLOSING",
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
			RecvQ: e.tc.Readable(), SendQ: int(info.SndNxt-info.SndUna) + info.NotsentBytes,
			Deadline: e.tc.Deadline()}
		t.timers.mu.Lock()
		if e.hidx >= 0 {
			ci.Scheduled = e.when
		}
		t.timers.mu.Unlock()
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
