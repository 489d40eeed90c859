package ustack

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// nShards is the number of connection shards. All engine calls of one
// connection happen under its shard's mutex, which also guards the shard's
// tcp.Counters (the engine increments them without synchronisation).
const nShards = 64

type shard struct {
	mu   sync.Mutex
	ctr  tcp.Counters
	out  [][]byte  // packets built by the current Output, written by flush
	outp []*[]byte // their pool pointers
	ifc  *iface    // where out goes
}

// tcpState is the TCP half of a Stack: demux tables, shards, timers.
type tcpState struct {
	s      *Stack
	cfg    *tcp.Config
	shards [nShards]shard
	timers *timerQueue
	key    [16]byte // ISN and port-selection secret

	cookieKeys tcp.SynCookieKeys
	tsKey      [16]byte // timestamp offset secret (tcp.TSOffset)
	tfo        fastOpen

	mu        sync.RWMutex // guards conns, listeners, ports
	conns     map[tcp.Tuple]*endpoint
	listeners map[listenKey]*listener
	ports     *tcp.PortAllocator
	twCount   atomic.Int64 // endpoints in TIME-WAIT (tcp_max_tw_buckets)
	orphans   atomic.Int64 // closed endpoints still in FIN-WAIT/CLOSING/LAST-ACK (tcp_max_orphans)
	memBytes  atomic.Int64 // buffered bytes of all connections (tcp_mem)
	memPress  atomic.Bool  // above tcp_mem pressure, until below low
	// underPressure is memPress.Load, made once and shared by every
	// engine (tcp.Conn.SetMemoryPressure: no buffer autotuning).
	underPressure func() bool
	closed        bool

	tracer atomic.Pointer[TraceFunc] // Stack.SetTracer
}

func newTCPState(s *Stack) *tcpState {
	t := &tcpState{
		s:         s,
		cfg:       s.tcfg,
		timers:    newTimerQueue(),
		conns:     make(map[tcp.Tuple]*endpoint),
		listeners: make(map[listenKey]*listener),
	}
	rand.Read(t.key[:])
	rand.Read(t.cookieKeys[0][:])
	rand.Read(t.cookieKeys[1][:])
	rand.Read(t.tsKey[:])
	lo, hi := t.portRange()
	t.ports, _ = tcp.NewPortAllocator(&t.key, [2]int{lo, hi})
	t.initFastOpen()
	t.underPressure = t.memPress.Load
	s.wg.Add(1)
	go t.runTimers()
	return t
}

// endpoint is the runtime side of one tcp.Conn.
type endpoint struct {
	t      *tcpState
	sh     *shard
	tc     *tcp.Conn
	tuple  tcp.Tuple
	ifc    *iface
	emitFn func(*tcp.Segment)

	removed atomic.Bool // out of the demux table (set under t.mu)
	tw      atomic.Bool // in TIME-WAIT (for port reuse decisions)

	// guarded by sh.mu
	ln        *listener // passive open, until queued for Accept
	queued    bool      // handed to ln's accept queue
	synq      bool      // counted in ln's SYN queue
	dirty     bool      // has input waiting for Output (reader batch)
	estab     bool      // reached ESTABLISHED once
	tfoClient bool      // active open that used Fast Open
	deferSyn  bool      // Fast Open connect: the SYN waits for the first Write
	rdClosed  bool      // CloseRead was called
	closed    bool      // the user closed the TCPConn
	orphan    bool      // counted in t.orphans
	mem       int       // buffered and out-of-order bytes as counted in t.memBytes
	tfoc      tfoClientState
	tfoLn     *listener // passive Fast Open: counted in this listener's TFO queue
	rq, wq    waitq     // readers / writers (and dialers) waiting for progress
	icmpErr   error     // hard ICMP error that ended a connect

	// guarded by timers.mu
	hidx int
	when time.Time
}

// waitq wakes every goroutine waiting on it. It allocates a channel only
// when somebody waits. Guarded by the owner's lock.
type waitq struct{ ch chan struct{} }

func (q *waitq) wait() <-chan struct{} {
	if q.ch == nil {
		q.ch = make(chan struct{})
	}
	return q.ch
}

func (q *waitq) wake() {
	if q.ch != nil {
		close(q.ch)
		q.ch = nil
	}
}

func (t *tcpState) shardFor(tu tcp.Tuple) *shard {
	l, r := tu.Local.Addr().As16(), tu.Remote.Addr().As16()
	h := uint32(tu.Local.Port())*31 + uint32(tu.Remote.Port())
	h = h*16777619 ^ binary.BigEndian.Uint32(l[12:]) ^ binary.BigEndian.Uint32(r[12:])
	h ^= h >> 16
	h *= 0x45d9f3b
	h ^= h >> 16
	return &t.shards[h%nShards]
}

func (t *tcpState) newEndpoint(tu tcp.Tuple, tc *tcp.Conn, ifc *iface) *endpoint {
	e := &endpoint{t: t, tc: tc, tuple: tu, ifc: ifc, hidx: -1}
	e.sh = t.shardFor(tu)
	e.emitFn = e.emit
	tc.SetCounters(&e.sh.ctr)
	tc.SetMemoryPressure(t.underPressure)
	tc.SetMTU(ifc.mtu)
	t.setTSOffset(tc, tu)
	t.traceConn(tu, tc)
	return e
}

// setTSOffset gives tc Linux's per address pair timestamp offset
// (tcp_timestamps=1): TSval stays monotonic across connections between two
// hosts, which PAWS needs when a new SYN reuses a TIME-WAIT tuple.
func (t *tcpState) setTSOffset(tc *tcp.Conn, tu tcp.Tuple) {
	if t.cfg.Timestamps == 1 {
		tc.SetTimestampOffset(tcp.TSOffset(&t.tsKey, tu.Local.Addr(), tu.Remote.Addr()))
	}
}

// isn returns an RFC 6528 initial sequence number.
func (t *tcpState) isn(tu tcp.Tuple, now time.Time) uint32 {
	return tcp.ISN(&t.key, tu, now)
}

// input handles one TCP segment from src to dst (one of our addresses).
func (t *tcpState) input(in *inputCtx, src, dst netip.Addr, b []byte) {
	c := &t.s.ctr.tcp
	c.InSegs.Add(1)
	if len(b) < wire.TCPMinHeaderLen {
		c.InErrs.Add(1)
		return
	}
	hl := int(b[12]>>4) * 4
	if hl < wire.TCPMinHeaderLen || hl > len(b) {
		c.InErrs.Add(1)
		return
	}
	if wire.Checksum(b, wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(b))) != 0 {
		c.InCsumErrors.Add(1)
		c.InErrs.Add(1)
		return
	}
	h := wire.TCP(b)
	seg := &in.seg
	if err := seg.Options.Parse(b[wire.TCPMinHeaderLen:hl]); err != nil {
		c.InErrs.Add(1)
		return
	}
	seg.Seq, seg.Ack, seg.Flags = h.Seq(), h.Ack(), h.Flags()
	seg.Window, seg.Urgent = h.Window(), h.Urgent()
	seg.Payload = b[hl:]
	sport, dport := h.SrcPort(), h.DstPort()
	if sport == 0 || dport == 0 {
		c.InErrs.Add(1)
		return
	}
	tu := tcp.Tuple{Local: netip.AddrPortFrom(dst, dport), Remote: netip.AddrPortFrom(src, sport)}
	t.mu.RLock()
	e := t.conns[tu]
	t.mu.RUnlock()
	if e != nil && e.deliver(in, seg) {
		return
	}
	t.noConn(in, tu, seg)
	in.twISSOK = false
}

// atConnLimitLocked reports whether the stack holds Config.MaxConns
// connections (TIME-WAIT not counted). Called with t.mu held.
func (t *tcpState) atConnLimitLocked() bool {
	max := t.s.cfg.MaxConns
	return max > 0 && len(t.conns)-int(t.twCount.Load()) >= max
}

// deliver hands seg to e. It returns false if the segment must be treated
// as if there were no connection (e went away, or a new SYN ends e's
// TIME-WAIT).
func (e *endpoint) deliver(in *inputCtx, seg *tcp.Segment) bool {
	sh := e.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e.removed.Load() {
		return false
	}
	now := in.now
	st := e.tc.State()
	if st == tcp.TimeWait && e.tc.AcceptsSYN(seg) && e.t.listenerFor(e.tuple.Local) != nil {
		// A new incarnation's SYN (newer timestamp or beyond the old
		// sequence space) ends TIME-WAIT, as Linux does; the new
		// connection starts its ISN above the old one's.
		e.t.s.ctr.tcp.TCPTimeWaitReuse.Add(1)
		in.twISS, in.twISSOK = e.tc.NextISS(), true
		e.removeLocked()
		return false
	}
	if st == tcp.SynReceived && e.ln != nil && !e.queued && seg.Flags&wire.TCPFlagACK != 0 &&
		seg.Flags&(wire.TCPFlagRST|wire.TCPFlagSYN) == 0 && e.ln.acceptFull() {
		// Accept queue full: drop the ACK that would complete the
		// handshake; the peer retransmits (tcp_abort_on_overflow=0).
		e.t.s.ctr.tcp.ListenOverflows.Add(1)
		e.t.s.ctr.tcp.ListenDrops.Add(1)
		if e.t.cfg.AbortOnOverflow {
			e.tc.Abort()
			e.updateLocked(now)
		}
		return true
	}
	if e.tfoClient && st == tcp.SynSent {
		e.t.fastOpenSynAck(e, seg, now)
	}
	if len(seg.Payload) > 0 && e.t.overMemHigh() && !e.memAdmits(seg) {
		// Above tcp_mem high: drop the data (and a FIN after it) but
		// keep the ACK, which may free send buffers; the peer
		// retransmits the data.
		e.sh.ctr.TCPRcvQDrop++
		e.t.s.ctr.tcp.TCPMemoryDrops.Add(1)
		seg.Payload = nil
		seg.Flags &^= wire.TCPFlagFIN
	}
	e.tc.Input(seg, now)
	e.accountMemLocked()
	if !e.dirty {
		e.dirty = true
		in.dirty = append(in.dirty, e)
	}
	return true
}

// afterInput runs Output once after a batch of input segments.
func (e *endpoint) afterInput() {
	e.sh.mu.Lock()
	e.dirty = false
	e.updateLocked(time.Now())
	e.sh.mu.Unlock()
}

// onTimer is called by the timer goroutine when e's deadline passed.
func (e *endpoint) onTimer() {
	e.sh.mu.Lock()
	if e.removed.Load() && e.tw.Load() {
		e.sh.mu.Unlock() // an evicted TIME-WAIT endpoint
		return
	}
	now := time.Now()
	if d := e.tc.Deadline(); !d.IsZero() && !d.After(now) {
		e.tc.Timeout(now)
		if e.tfoClient {
			e.t.fastOpenTimeout(e, now)
		}
	}
	e.updateLocked(now)
	e.sh.mu.Unlock()
}

// updateLocked collects the engine's output, reschedules its timer, follows
// state changes and wakes waiters. Called with e.sh.mu held after every
// engine call.
func (e *endpoint) updateLocked(now time.Time) {
	if e.deferSyn {
		return // nothing may leave before the first Write
	}
	e.tc.Output(now, e.emitFn)
	e.sh.flush(e.t.s)
	e.accountMemLocked()
	st := e.tc.State()
	if e.closed {
		st = e.checkOrphanLocked(st, now)
	}
	if st == tcp.TimeWait && !e.tw.Load() {
		// net.ipv4.tcp_max_tw_buckets: past the limit a connection skips
		// TIME-WAIT and is destroyed at once, as Linux does.
		if max := e.t.cfg.MaxTwBuckets; max > 0 && e.t.twCount.Load() >= int64(max) {
			e.sh.ctr.TCPTimeWaitOverflow++
			e.removeLocked()
			e.rq.wake()
			e.wq.wake()
			return
		}
		e.t.twCount.Add(1)
		e.tw.Store(true)
	}
	if !e.estab && st >= tcp.Established {
		e.estab = true
	}
	if e.tfoLn != nil && st != tcp.SynReceived {
		e.leaveFastOpenQueue()
	}
	if e.ln != nil && !e.queued {
		// Reset after the handshake completed, both within one batch of
		// input (a client that connects, writes and aborts at once):
		// Linux has queued the child at the ACK already, and Accept
		// returns it, its Read giving the data then ECONNRESET.
		resetEstablished := st == tcp.Closed && errors.Is(e.tc.Err(), syscall.ECONNRESET)
		switch {
		case st == tcp.Closed && !resetEstablished:
			e.leaveSynQueue()
		case st >= tcp.Established || e.tfoLn != nil || resetEstablished:
			// Established, or opened by Fast Open: like Linux, the
			// child is acceptable at once and its SYN data readable.
			e.leaveSynQueue()
			if e.ln.enqueue(e) {
				e.queued = true
			} else {
				e.tc.Abort()
				e.tc.Output(now, e.emitFn)
				e.sh.flush(e.t.s)
				st = e.tc.State()
			}
		}
	}
	if st == tcp.Closed {
		e.removeLocked()
	} else if !e.removed.Load() {
		e.t.timers.schedule(e, e.tc.Deadline())
	}
	e.rq.wake()
	e.wq.wake()
}

// accountMemLocked brings e's share of t.memBytes up to date and follows
// net.ipv4.tcp_mem's pressure threshold (counted in TCPMemoryPressures on
// entry, left below the low threshold).
func (e *endpoint) accountMemLocked() {
	m := e.tc.BufferedBytes() + e.tc.OOOMemory()
	if e.removed.Load() {
		m = 0
	}
	if m == e.mem {
		return
	}
	t := e.t
	total := t.memBytes.Add(int64(m - e.mem))
	e.mem = m
	switch {
	case total > int64(t.cfg.Mem[1])*memPage:
		if !t.memPress.Load() && t.memPress.CompareAndSwap(false, true) {
			e.sh.ctr.TCPMemoryPressures++
		}
	case total < int64(t.cfg.Mem[0])*memPage:
		if t.memPress.Load() {
			t.memPress.Store(false)
		}
	}
}

// memAdmits reports whether seg's data may still enter e above tcp_mem
// high. While its unread data is below tcp_rmem[0], a connection still
// receives when its out-of-order queue is below that too (Linux
// sk_rmem_schedule: connections hoarding memory, out-of-order data that
// never fills in, cannot starve every other one) or when the data fills
// the hole before that queue (which, counted in tcp_mem, would otherwise
// keep the connection stuck; Linux prunes the queue instead, reneging on
// what it SACKed). Called with e.sh.mu held.
func (e *endpoint) memAdmits(seg *tcp.Segment) bool {
	min := e.t.rmemMin()
	unread := e.tc.Readable()
	if unread >= min {
		return false
	}
	return unread+e.tc.OOOMemory() < min || e.tc.FillsHole(seg.Seq, len(seg.Payload))
}

// rmemMin is net.ipv4.tcp_rmem[0], the receive memory every connection
// may use whatever the global pressure.
func (t *tcpState) rmemMin() int { return max(t.cfg.RMem[0], 0) }

// memPage is the unit of net.ipv4.tcp_mem.
const memPage = 4096

// overMemHigh reports whether the connections' buffers hold more than
// net.ipv4.tcp_mem's high threshold.
func (t *tcpState) overMemHigh() bool {
	return t.cfg.Mem[2] > 0 && t.memBytes.Load() > int64(t.cfg.Mem[2])*memPage
}

// isOrphanState reports whether a connection the user closed in state st
// is an orphan in Linux's sense: still alive, not yet in TIME-WAIT.
func isOrphanState(st tcp.State) bool {
	switch st {
	case tcp.FinWait1, tcp.FinWait2, tcp.Closing, tcp.LastAck:
		return true
	}
	return false
}

// checkOrphanLocked keeps t.orphans in step with e, which the user closed.
// net.ipv4.tcp_max_orphans: a connection that would become one orphan too
// many is reset at once and counted in TCPAbortOnMemory, as Linux does
// ("too many orphaned sockets"). It returns the state after that.
func (e *endpoint) checkOrphanLocked(st tcp.State, now time.Time) tcp.State {
	is := isOrphanState(st) && !e.removed.Load()
	switch {
	case is && !e.orphan:
		if max := e.t.cfg.MaxOrphans; max > 0 && e.t.orphans.Load() >= int64(max) {
			e.t.s.ctr.tcp.TCPAbortOnMemory.Add(1)
			e.tc.Abort()
			e.tc.Output(now, e.emitFn)
			e.sh.flush(e.t.s)
			return e.tc.State()
		}
		e.orphan = true
		e.t.orphans.Add(1)
	case !is && e.orphan:
		e.orphan = false
		e.t.orphans.Add(-1)
	}
	return st
}

// leaveFastOpenQueue ends e's place in its listener's Fast Open queue
// (handshake done, or connection gone).
func (e *endpoint) leaveFastOpenQueue() {
	if e.tfoLn != nil {
		e.tfoLn.tfoQ.Add(-1)
		e.tfoLn = nil
	}
}

func (e *endpoint) leaveSynQueue() {
	if e.synq {
		e.synq = false
		e.ln.synq.Add(-1)
	}
}

// removeLocked takes e out of the demux table and the timer heap.
func (e *endpoint) removeLocked() {
	if e.ln != nil && !e.queued {
		e.leaveSynQueue()
	}
	e.leaveFastOpenQueue()
	if e.orphan {
		e.orphan = false
		e.t.orphans.Add(-1)
	}
	if e.mem != 0 {
		e.t.memBytes.Add(int64(-e.mem))
		e.mem = 0
	}
	e.t.timers.schedule(e, time.Time{})
	if e.removed.Load() {
		return
	}
	t := e.t
	t.mu.Lock()
	if t.conns[e.tuple] == e {
		delete(t.conns, e.tuple)
	}
	e.removed.Store(true)
	if e.tw.Load() {
		t.twCount.Add(-1)
	}
	t.mu.Unlock()
}

// bufPool holds packet buffers; pointers travel with the buffers so that
// returning one to the pool does not allocate.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf(n int) *[]byte {
	bp := bufPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	*bp = (*bp)[:n]
	return bp
}

func putBuf(bp *[]byte) {
	if cap(*bp) > 65536+128 {
		return
	}
	bufPool.Put(bp)
}

// emit builds one IP+TCP packet for seg and queues it on the shard.
func (e *endpoint) emit(seg *tcp.Segment) {
	if e.tfoClient && seg.Flags&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN {
		e.noteSyn(seg)
	}
	sh := e.sh
	local, remote := e.tuple.Local, e.tuple.Remote
	src, dst := local.Addr(), remote.Addr()
	h := wire.TCPHeader{
		SrcPort: local.Port(), DstPort: remote.Port(),
		Seq: seg.Seq, Ack: seg.Ack, Flags: seg.Flags, Window: seg.Window, Urgent: seg.Urgent,
		Options: &seg.Options,
	}
	tl := h.Len() + len(seg.Payload)
	hl := ipHeaderLen(src)
	bp := getBuf(hl + tl)
	buf := *bp
	if _, err := e.t.s.buildIPECN(buf, src, dst, wire.ProtoTCP, tl, seg.ECN); err != nil {
		putBuf(bp)
		e.t.s.ctr.ip.OutDiscards.Add(1)
		return
	}
	if _, err := wire.BuildTCP(buf[hl:], &h, seg.Payload, wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, tl)); err != nil {
		putBuf(bp)
		e.t.s.ctr.ip.OutDiscards.Add(1)
		return
	}
	if sh.ifc != e.ifc && len(sh.out) > 0 {
		sh.flush(e.t.s)
	}
	sh.ifc = e.ifc
	sh.out = append(sh.out, buf)
	sh.outp = append(sh.outp, bp)
	if len(sh.out) >= 64 {
		sh.flush(e.t.s)
	}
}

// flush writes the queued packets to the link, in one batch if it can.
func (sh *shard) flush(s *Stack) {
	if len(sh.out) == 0 {
		return
	}
	ifc := sh.ifc
	sent := 0
	if ifc.bw != nil && len(sh.out) > 1 {
		n, _ := ifc.bw.WritePackets(sh.out)
		sent = n
	} else {
		for _, p := range sh.out {
			if ifc.ep.WritePacket(p) == nil {
				sent++
			}
		}
	}
	s.ctr.ip.OutRequests.Add(uint64(sent))
	if d := len(sh.out) - sent; d > 0 {
		s.ctr.ip.OutDiscards.Add(uint64(d))
	}
	for i, bp := range sh.outp {
		putBuf(bp)
		sh.outp[i] = nil
		sh.out[i] = nil
	}
	sh.out = sh.out[:0]
	sh.outp = sh.outp[:0]
}

// noConn handles a segment that matches no connection: a listener's SYN,
// or a RST in reply (RFC 9293 3.10.7.1 and 3.10.7.2).
func (t *tcpState) noConn(in *inputCtx, tu tcp.Tuple, seg *tcp.Segment) {
	if seg.Flags&wire.TCPFlagRST != 0 {
		return
	}
	ln := t.listenerFor(tu.Local)
	if ln == nil {
		t.s.ctr.tcp.NoPort.Add(1)
		t.sendReset(in, tu, seg)
		return
	}
	if seg.Flags&wire.TCPFlagACK != 0 {
		if seg.Flags&wire.TCPFlagSYN == 0 && t.synCookieACK(in, ln, tu, seg) {
			return
		}
		t.sendReset(in, tu, seg)
		return
	}
	if seg.Flags&wire.TCPFlagSYN == 0 {
		return
	}
	ln.handleSYN(in, tu, seg)
}

// sendReset answers seg, which matches no connection, with a RST.
func (t *tcpState) sendReset(in *inputCtx, tu tcp.Tuple, seg *tcp.Segment) {
	h := wire.TCPHeader{SrcPort: tu.Local.Port(), DstPort: tu.Remote.Port()}
	if seg.Flags&wire.TCPFlagACK != 0 {
		h.Seq = seg.Ack
		h.Flags = wire.TCPFlagRST
	} else {
		h.Ack = seg.Seq + seg.Len()
		h.Flags = wire.TCPFlagRST | wire.TCPFlagACK
	}
	t.sendBare(in, tu, &h)
	t.s.ctr.tcp.OutRsts.Add(1)
}

// sendBare sends a TCP segment without payload built by the stack itself.
func (t *tcpState) sendBare(in *inputCtx, tu tcp.Tuple, h *wire.TCPHeader) {
	src, dst := tu.Local.Addr(), tu.Remote.Addr()
	ifc, _, ok := t.s.route(dst, src)
	if !ok {
		t.s.ctr.ip.OutNoRoutes.Add(1)
		return
	}
	tl := h.Len()
	hl := ipHeaderLen(src)
	buf := in.out[:hl+tl]
	if _, err := t.s.buildIP(buf, src, dst, wire.ProtoTCP, tl); err != nil {
		return
	}
	if _, err := wire.BuildTCP(buf[hl:], h, nil, wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, tl)); err != nil {
		return
	}
	t.s.ctr.tcp.OutSegs.Add(1)
	t.s.writeRaw(ifc, buf)
}

// icmpError handles an ICMP error m (whole message) quoting one of our
// TCP segments. errno != 0 is a destination unreachable: like Linux, it
// fails a connection still in SYN-SENT with that error (ECONNREFUSED,
// EHOSTUNREACH, ...) and is a soft error otherwise. mtu != 0 is a
// fragmentation-needed / packet-too-big: the connection's MSS follows the
// new path MTU.
func (t *tcpState) icmpError(m []byte, v6 bool, errno syscall.Errno, mtu int) {
	var src, dst netip.Addr
	var th []byte
	if v6 {
		ip, proto, tr, err := wire.ICMPv6(m).Quoted()
		if err != nil || proto != wire.ProtoTCP {
			return
		}
		src, dst, th = ip.Src(), ip.Dst(), tr
	} else {
		ip, tr, err := wire.ICMPv4(m).Quoted()
		if err != nil || ip.Protocol() != wire.ProtoTCP {
			return
		}
		src, dst, th = ip.Src(), ip.Dst(), tr
	}
	if len(th) < 8 {
		return
	}
	tu := tcp.Tuple{
		Local:  netip.AddrPortFrom(src, binary.BigEndian.Uint16(th[0:2])),
		Remote: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(th[2:4])),
	}
	seq := binary.BigEndian.Uint32(th[4:8])
	t.mu.RLock()
	e := t.conns[tu]
	t.mu.RUnlock()
	if e == nil {
		return
	}
	e.sh.mu.Lock()
	defer e.sh.mu.Unlock()
	if e.removed.Load() {
		return
	}
	info := e.tc.Info()
	// The quoted sequence number must be one we have in flight (RFC 5927).
	if int32(seq-info.SndUna) < 0 || int32(seq-info.SndNxt) > 0 {
		return
	}
	now := time.Now()
	switch {
	case mtu != 0:
		min := 576
		if v6 {
			min = 1280
		}
		if mtu >= min && mtu < e.ifc.mtu {
			e.tc.SetMTU(mtu)
			e.updateLocked(now)
		}
	case errno != 0 && e.tc.State() == tcp.SynSent:
		e.icmpErr = errno
		e.tc.Abort()
		e.updateLocked(now)
	}
}

// shutdown aborts every connection and closes every listener.
func (t *tcpState) shutdown() {
	t.mu.Lock()
	t.closed = true
	lns := make([]*listener, 0, len(t.listeners))
	seen := map[*listener]bool{}
	for _, l := range t.listeners {
		if !seen[l] {
			seen[l] = true
			lns = append(lns, l)
		}
	}
	es := make([]*endpoint, 0, len(t.conns))
	for _, e := range t.conns {
		es = append(es, e)
	}
	t.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	now := time.Now()
	for _, e := range es {
		e.sh.mu.Lock()
		if e.tc.State() != tcp.Closed {
			e.tc.Abort()
		}
		e.updateLocked(now)
		e.removeLocked()
		e.rq.wake()
		e.wq.wake()
		e.sh.mu.Unlock()
	}
}
