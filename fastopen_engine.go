package ustack

import (
	"errors"
	"syscall"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// The calls into the engine's Fast Open API, and what the runtime learns
// from the segments it carries.

// setClientFastOpen prepares an active open for Fast Open: the SYN carries
// cookie (nil: a cookie request; noCookie: no option at all, tcp_fastopen
// 0x4) and, with a cookie, the first data written.
func setClientFastOpen(tc *tcp.Conn, cookie []byte, exp bool, mss uint16, noCookie bool) {
	tc.SetFastOpen(cookie, exp, int(mss), noCookie)
}

// acceptSynData lets a passive open take the data its SYN carried: it is
// readable at once and the SYN-ACK acknowledges it.
func acceptSynData(tc *tcp.Conn, syn *tcp.Segment) {
	if len(syn.Payload) > 0 {
		tc.AcceptSynData(syn.Payload)
	}
}

// tfoClientState is what the runtime notes about an active Fast Open
// connection's SYNs. Guarded by the shard lock.
type tfoClientState struct {
	syns      int  // SYNs sent (more than one: the SYN was retransmitted)
	synData   int  // data bytes the first SYN carried
	done      bool // SYN-ACK evaluated
	blackhole bool // reported to the blackhole detection
}

// fastOpenTimeout runs after a retransmission timeout of an active Fast
// Open connection: like Linux tcp_fastopen_active_detect_blackhole, the
// third consecutive timeout (or giving up earlier) makes the stack suspect
// a middlebox that drops Fast Open and pause active Fast Open to every
// server for net.ipv4.tcp_fastopen_blackhole_timeout_sec (doubling on
// each new detection; a timeout of 0, the default, turns this off).
func (t *tcpState) fastOpenTimeout(e *endpoint, now time.Time) {
	if e.tfoc.blackhole || e.tfoc.syns == 0 || t.cfg.FastOpenBlackholeTimeout <= 0 {
		return
	}
	if e.tc.Info().Retransmits >= 3 || errors.Is(e.tc.Err(), syscall.ETIMEDOUT) {
		e.tfoc.blackhole = true
		t.tfo.mu.Lock()
		t.tfo.cache.DisableActive(now)
		t.tfo.mu.Unlock()
	}
}

// noteSyn records a SYN an active Fast Open connection sends.
func (e *endpoint) noteSyn(seg *tcp.Segment) {
	e.tfoc.syns++
	if e.tfoc.syns == 1 {
		e.tfoc.synData = len(seg.Payload)
	}
}

// fastOpenSynAck evaluates the SYN-ACK answering an active Fast Open
// connection's SYN, before the engine takes it, as Linux
// tcp_rcv_fastopen_synack does: it caches the cookie (and its option form)
// and the server's MSS, records a SYN loss for the server when the SYN had
// to be retransmitted and the SYN-ACK neither carries a cookie nor
// acknowledges the data (tcp.FastOpenCache backs off such servers), and
// (the engine counts TCPFastOpenActive when the SYN data was acknowledged
// or TCPFastOpenActiveFail when it was not, and then sends it again).
func (t *tcpState) fastOpenSynAck(e *endpoint, seg *tcp.Segment, now time.Time) {
	if e.tfoc.done || seg.Flags&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST) != wire.TCPFlagSYN|wire.TCPFlagACK {
		return
	}
	iss := e.tc.ISS()
	acked := int32(seg.Ack - (iss + 1))
	if acked < 0 || int(acked) > e.tfoc.synData {
		return // not an acceptable SYN-ACK: the engine answers it
	}
	e.tfoc.done = true
	o := &seg.Options
	var cookie []byte
	if o.HasFastOpen && o.CookieLen > 0 {
		cookie = o.Cookie[:o.CookieLen]
	}
	var mss uint16
	if o.HasMSS {
		mss = o.MSS
	}
	dataLost := e.tfoc.synData > 0 && int(acked) < e.tfoc.synData
	synLost := e.tfoc.syns > 1 && cookie == nil && dataLost
	t.tfo.mu.Lock()
	t.tfo.cache.Update(e.tuple.Remote.Addr(), cookie, o.FastOpenExp, mss, synLost, now)
	t.tfo.mu.Unlock()
}
