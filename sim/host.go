package sim

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Host is a simulated machine with one IPv4 address running TCP engines.
type Host struct {
	Name string
	Addr netip.Addr
	// Config is the TCP configuration new connections of this host use.
	// Change it before the connections are created.
	Config tcp.Config
	// MTU of the host's interface (default 1500).
	MTU int
	// Counters are the host's TCP MIB counters.
	Counters tcp.Counters

	sim       *Sim
	rng       *rand.Rand
	conns     map[tcp.Tuple]*Conn
	all       []*Conn
	listeners map[uint16]Handler
	tfoPorts  map[uint16]bool       // listeners with TCP_FASTOPEN set
	tfoCache  map[netip.Addr][]byte // client: Fast Open cookies by server
	tfoKey    tcp.FastOpenKeys      // server key when Config has none
	routes    map[netip.Addr]*direction
	nextPort  uint16
	ipID      uint16
}

func newHost(s *Sim, name string, addr netip.Addr) *Host {
	return &Host{
		Name:      name,
		Addr:      addr,
		Config:    tcp.DefaultConfig(),
		MTU:       1500,
		sim:       s,
		rng:       s.subRand(),
		conns:     make(map[tcp.Tuple]*Conn),
		listeners: make(map[uint16]Handler),
		tfoPorts:  make(map[uint16]bool),
		tfoCache:  make(map[netip.Addr][]byte),
		routes:    make(map[netip.Addr]*direction),
		nextPort:  49152,
	}
}

// Conns returns every connection the host has had, in creation order.
func (h *Host) Conns() []*Conn { return h.all }

// Listen makes the host accept connections on port; each accepted
// connection is driven by a copy of handler.
func (h *Host) Listen(port uint16, handler Handler) {
	h.listeners[port] = handler
	h.sim.trace.add(Event{T: h.sim.Elapsed(), Host: h.Name, Kind: KindApp, Note: fmt.Sprintf("listen :%d", port)})
}

// ListenFastOpen is Listen on a listener with TCP Fast Open enabled (like
// setsockopt TCP_FASTOPEN): with net.ipv4.tcp_fastopen bit 0x2 set it grants
// a cookie to a SYN that asks for one.
func (h *Host) ListenFastOpen(port uint16, handler Handler) {
	h.Listen(port, handler)
	h.tfoPorts[port] = true
}

// Dial opens a connection to remote now; handler receives its events.
func (h *Host) Dial(remote netip.AddrPort, handler Handler) *Conn {
	return h.dial(remote, handler, false, nil)
}

// DialFastOpen opens a connection with TCP Fast Open (like sendto with
// MSG_FASTOPEN) when net.ipv4.tcp_fastopen bit 0x1 is set: the SYN asks for
// a cookie, or carries the cookie cached from an earlier connection to the
// same server. data is queued before the SYN leaves, so an engine that
// sends data in the SYN does so.
func (h *Host) DialFastOpen(remote netip.AddrPort, handler Handler, data []byte) *Conn {
	return h.dial(remote, handler, true, data)
}

func (h *Host) dial(remote netip.AddrPort, handler Handler, tfo bool, data []byte) *Conn {
	port := h.nextPort
	h.nextPort++
	t := tcp.Tuple{Local: netip.AddrPortFrom(h.Addr, port), Remote: remote}
	iss := h.rng.Uint32()
	c := h.newConn(t, handler)
	note := "connect " + remote.String()
	if tfo && h.Config.FastOpen&tcp.FastOpenClient != 0 {
		ck := h.tfoCache[remote.Addr()]
		if len(ck) > 0 {
			note += fmt.Sprintf(" (Fast Open, cookie %x)", ck)
		} else {
			note += " (Fast Open, cookie request)"
		}
		c.tfo = true
		c.trace(Event{Kind: KindApp, Note: note})
		c.tc = tcp.NewActive(&c.cfg, t, iss, h.sim.now)
		// With a cookie the SYN carries the data queued before it leaves
		// (below); without one it asks for a cookie (or, with
		// tcp_fastopen 0x4, carries the data with no option).
		c.tc.SetFastOpen(ck, false, 0, len(ck) == 0 && h.Config.FastOpen&tcp.FastOpenClientNoCookie != 0)
	} else {
		c.trace(Event{Kind: KindApp, Note: note})
		c.tc = tcp.NewActive(&c.cfg, t, iss, h.sim.now)
	}
	c.setup()
	if len(data) > 0 {
		c.pending = append(c.pending, data...)
		c.trace(Event{Kind: KindApp, Note: fmt.Sprintf("write %d bytes", len(data))})
	}
	c.kick()
	return c
}

func (h *Host) newConn(t tcp.Tuple, handler Handler) *Conn {
	c := &Conn{h: h, Tuple: t, handler: handler, cfg: h.Config, Opened: h.sim.Elapsed(), state: tcp.Closed}
	h.conns[t] = c
	h.all = append(h.all, c)
	return c
}

// transmit builds an IPv4+TCP packet and sends it towards dst.
func (h *Host) transmit(src, dst netip.AddrPort, seg *tcp.Segment) []byte {
	opts := seg.Options
	th := wire.TCPHeader{
		SrcPort: src.Port(), DstPort: dst.Port(),
		Seq: seg.Seq, Ack: seg.Ack, Flags: seg.Flags,
		Window: seg.Window, Urgent: seg.Urgent, Options: &opts,
	}
	tcpLen := th.Len() + len(seg.Payload)
	hl := wire.IPv4MinHeaderLen
	if dst.Addr().Is6() {
		hl = wire.IPv6HeaderLen
	}
	pkt := make([]byte, hl+tcpLen)
	ps := wire.PseudoHeaderSum(src.Addr(), dst.Addr(), wire.ProtoTCP, tcpLen)
	if _, err := wire.BuildTCP(pkt[hl:], &th, seg.Payload, ps); err != nil {
		h.note(fmt.Sprintf("cannot build TCP segment: %v", err))
		return nil
	}
	var err error
	if dst.Addr().Is6() {
		_, err = wire.BuildIPv6(pkt, &wire.IPv6Header{TrafficClass: seg.ECN & 3, NextHeader: wire.ProtoTCP, HopLimit: 64,
			Src: src.Addr(), Dst: dst.Addr(), PayloadLen: tcpLen})
	} else {
		h.ipID++
		_, err = wire.BuildIPv4(pkt, &wire.IPv4Header{TOS: seg.ECN & 3, TTL: 64, Protocol: wire.ProtoTCP, ID: h.ipID, DF: true,
			Src: src.Addr(), Dst: dst.Addr(), PayloadLen: tcpLen})
	}
	if err != nil {
		h.note(fmt.Sprintf("cannot build IP header: %v", err))
		return nil
	}
	h.sim.pcap.write(h, h.sim.now, pkt)
	d := h.routes[dst.Addr()]
	if d == nil {
		h.note("no route to " + dst.Addr().String())
		return pkt
	}
	d.send(pkt)
	return pkt
}

func (h *Host) note(s string) {
	h.sim.trace.add(Event{T: h.sim.Elapsed(), Host: h.Name, Kind: KindNote, Note: s})
}

// parsed is a received packet taken apart.
type parsed struct {
	src, dst netip.AddrPort
	seg      tcp.Segment
}

// ipTCP returns the addresses and TCP bytes of an IPv4 or IPv6 packet.
func ipTCP(pkt []byte) (src, dst netip.Addr, payload []byte, err error) {
	src, dst, payload, _, err = ipTCPECN(pkt)
	return src, dst, payload, err
}

// ipECN returns the ECN codepoint of an IPv4 or IPv6 packet.
func ipECN(pkt []byte) uint8 {
	if len(pkt) > 1 && pkt[0]>>4 == 6 {
		return (pkt[1] >> 4) & 3
	}
	if len(pkt) > 1 {
		return pkt[1] & 3
	}
	return 0
}

func ipTCPECN(pkt []byte) (src, dst netip.Addr, payload []byte, ecn uint8, err error) {
	ecn = ipECN(pkt)
	src, dst, payload, err = ipTCPOnly(pkt)
	return src, dst, payload, ecn, err
}

func ipTCPOnly(pkt []byte) (src, dst netip.Addr, payload []byte, err error) {
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		ip, err := wire.ParseIPv6(pkt)
		if err != nil {
			return src, dst, nil, err
		}
		proto, payload, err := ip.UpperLayer()
		if err != nil {
			return src, dst, nil, err
		}
		if proto != wire.ProtoTCP {
			return src, dst, nil, fmt.Errorf("next header %d", proto)
		}
		return ip.Src(), ip.Dst(), payload, nil
	}
	ip, err := wire.ParseIPv4(pkt)
	if err != nil {
		return src, dst, nil, err
	}
	if !ip.ValidChecksum() {
		return src, dst, nil, errors.New("bad IPv4 checksum")
	}
	if ip.Protocol() != wire.ProtoTCP {
		return src, dst, nil, fmt.Errorf("protocol %d", ip.Protocol())
	}
	return ip.Src(), ip.Dst(), ip.Payload(), nil
}

func parsePacket(pkt []byte) (*parsed, error) {
	src, dst, payload, err := ipTCP(pkt)
	if err != nil {
		return nil, err
	}
	t, err := wire.ParseTCP(payload)
	if err != nil {
		return nil, err
	}
	if !t.ValidChecksum(wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(payload))) {
		return nil, errors.New("bad TCP checksum")
	}
	p := &parsed{
		src: netip.AddrPortFrom(src, t.SrcPort()),
		dst: netip.AddrPortFrom(dst, t.DstPort()),
	}
	p.seg = tcp.Segment{Seq: t.Seq(), Ack: t.Ack(), Flags: t.Flags(), Window: t.Window(), Urgent: t.Urgent(), Payload: t.Payload(), ECN: ipECN(pkt)}
	if err := t.ParseOptions(&p.seg.Options); err != nil {
		return nil, err
	}
	return p, nil
}

// receive handles a packet arriving from the network.
func (h *Host) receive(pkt []byte) {
	p, err := parsePacket(pkt)
	if err != nil {
		h.note("discarded packet: " + err.Error())
		return
	}
	if p.dst.Addr() != h.Addr {
		h.note("discarded packet for " + p.dst.Addr().String())
		return
	}
	t := tcp.Tuple{Local: p.dst, Remote: p.src}
	seg := &p.seg
	if c := h.conns[t]; c != nil {
		if seg.Flags&wire.TCPFlagSYN != 0 && !c.haveIRS {
			c.irs, c.haveIRS = seg.Seq, true
		}
		c.SegsIn++
		i := len(h.sim.trace.Events)
		c.traceSeg(KindRecv, seg, "")
		c.tc.Input(seg, h.sim.now)
		c.engineState(&h.sim.trace.Events[i])
		c.kick()
		return
	}
	const synMask = wire.TCPFlagSYN | wire.TCPFlagACK | wire.TCPFlagRST
	if handler, ok := h.listeners[t.Local.Port()]; ok && seg.Flags&synMask == wire.TCPFlagSYN {
		c := h.newConn(t, handler)
		c.state = tcp.Listen // the listener's child: the trace shows LISTEN -> SYN-RECEIVED
		c.irs, c.haveIRS = seg.Seq, true
		c.SegsIn++
		syn := len(h.sim.trace.Events)
		c.traceSeg(KindRecv, seg, "")
		tc, err := tcp.NewPassive(&c.cfg, t, h.rng.Uint32(), seg, h.sim.now)
		if err != nil {
			c.trace(Event{Kind: KindNote, Note: "SYN refused by engine", Err: err.Error()})
			delete(h.conns, t)
			c.gone = true
			return
		}
		c.tc = tc
		c.setup()
		c.engineState(&h.sim.trace.Events[syn])
		h.serverFastOpen(c, seg)
		c.kick()
		return
	}
	// Nothing here: answer with a RST unless the segment is one (RFC 9293 3.10.7.1).
	ev := Event{T: h.sim.Elapsed(), Host: h.Name, Conn: t.Local.String() + ">" + t.Remote.String(), Kind: KindRecv}
	fillSeg(&ev, seg)
	ev.relSeq, ev.relAck, ev.hasAck = seg.Seq, seg.Ack, seg.Flags&wire.TCPFlagACK != 0
	ev.Note = "no connection"
	h.sim.trace.add(ev)
	if seg.Flags&wire.TCPFlagRST != 0 {
		return
	}
	rst := tcp.Segment{Flags: wire.TCPFlagRST}
	if seg.Flags&wire.TCPFlagACK != 0 {
		rst.Seq = seg.Ack
	} else {
		rst.Flags |= wire.TCPFlagACK
		rst.Ack = seg.Seq + seg.Len()
	}
	out := Event{T: h.sim.Elapsed(), Host: h.Name, Conn: ev.Conn, Kind: KindSend, Note: "reset, no connection"}
	fillSeg(&out, &rst)
	out.relSeq, out.relAck, out.hasAck = rst.Seq, rst.Ack, rst.Flags&wire.TCPFlagACK != 0
	h.sim.trace.add(out)
	h.transmit(t.Local, t.Remote, &rst)
}

// serverFastOpen applies a Fast Open listener's policy to the SYN of a new
// passive connection (the engine's ServerFastOpen, like Linux
// tcp_try_fastopen): a cookie request gets a cookie in the SYN-ACK; a
// valid cookie with data makes the data readable now, before the
// handshake completes, and the SYN-ACK acknowledges it; an invalid cookie
// gets only the SYN acknowledged and a fresh cookie.
func (h *Host) serverFastOpen(c *Conn, syn *tcp.Segment) {
	mode := h.Config.FastOpen
	if mode&tcp.FastOpenServer == 0 || !h.tfoPorts[c.Tuple.Local.Port()] && mode&tcp.FastOpenServerAllListeners == 0 {
		return
	}
	o := &syn.Options
	if !o.HasFastOpen && mode&tcp.FastOpenServerNoCookie == 0 {
		return
	}
	keys := h.Config.FastOpenKey
	if keys.IsZero() {
		if h.tfoKey.IsZero() {
			for i := range h.tfoKey.Primary {
				h.tfoKey.Primary[i] = byte(h.rng.Uint32())
			}
		}
		keys = h.tfoKey
	}
	before := h.Counters
	accepted := c.tc.ServerFastOpen(&keys, mode, syn)
	ck := keys.Cookie(c.Tuple.Remote.Addr(), c.Tuple.Local.Addr())
	switch {
	case accepted:
		c.trace(Event{Kind: KindNote, Note: fmt.Sprintf("Fast Open: %d bytes of SYN data accepted, readable before the handshake completes", c.tc.Readable())})
	case h.Counters.TCPFastOpenPassiveFail > before.TCPFastOpenPassiveFail:
		c.trace(Event{Kind: KindNote, Note: fmt.Sprintf("Fast Open cookie invalid: SYN data not accepted, cookie %x granted", ck)})
	case o.HasFastOpen && o.CookieLen == 0:
		c.trace(Event{Kind: KindNote, Note: fmt.Sprintf("Fast Open cookie %x granted", ck)})
	}
}

func fillSeg(e *Event, seg *tcp.Segment) {
	seq, ack, n, win := seg.Seq, seg.Ack, len(seg.Payload), seg.Window
	e.Flags = FlagString(seg.Flags)
	e.Seq, e.Len, e.Win = &seq, &n, &win
	if seg.Flags&wire.TCPFlagACK != 0 {
		e.Ack = &ack
	}
	e.Opts = OptString(&seg.Options)
}

// Handler holds an application's callbacks for one connection. Any may be
// nil. Callbacks may call the Conn's methods.
type Handler struct {
	// Name labels the application in the trace ("echo", "http", ...).
	Name string
	// OnOpen runs when the connection reaches ESTABLISHED.
	OnOpen func(c *Conn)
	// OnData runs for every chunk of in-order data read; p is only valid
	// during the call.
	OnData func(c *Conn, p []byte)
	// OnEOF runs once when the peer's FIN has been read.
	OnEOF func(c *Conn)
	// OnClose runs once when the connection is CLOSED (c.Err says why).
	OnClose func(c *Conn)
}

// Conn is a simulated application's connection: the engine plus the
// bookkeeping the simulator needs (timers, pending writes, statistics).
type Conn struct {
	Tuple tcp.Tuple

	h       *Host
	cfg     tcp.Config
	tc      *tcp.Conn
	handler Handler

	state    tcp.State
	timerAt  time.Time
	timerGen uint64
	kicking  bool
	again    bool
	gone     bool

	iss, irs          uint32
	haveISS, haveIRS  bool
	cc                tcp.Event // the engine's last send event (cwnd, ssthresh, srtt), from its tracer
	haveCC            bool
	sndMax            uint32
	haveSndMax        bool
	lastAck, lastSeq  uint32
	lastWin           uint16
	haveLastAck       bool
	pending           []byte
	wantCloseWrite    bool
	wantClose         bool
	paused            bool
	tfo               bool
	closing           bool
	eof               bool
	opened, closedCbk bool
	errSeen           bool

	// Statistics, virtual times since the start of the simulation.
	Opened, Established, Closed time.Duration
	BytesRead, BytesWritten     int64
	Retransmits, DupAcks        int
	SegsOut, SegsIn             int
	Err                         error
}

func (c *Conn) setup() {
	c.tc.SetCounters(&c.h.Counters)
	c.tc.SetMTU(c.h.MTU)
	c.tc.SetTracer(c.engineEvent)
}

// engineEvent keeps the engine's congestion state as of its last sent
// segment, for the "send" event that follows in emit, and passes the event
// on to the simulation's engine tracer, if any.
func (c *Conn) engineEvent(e *tcp.Event) {
	if e.Kind == tcp.EvSend {
		c.cc, c.haveCC = *e, true
	}
	if fn := c.h.sim.engineTrace; fn != nil {
		fn(c.h, c.Tuple, e)
	}
}

// setCC fills a trace event's congestion fields: cwnd, ssthresh once set
// (the initial "infinite" value is left out) and srtt once measured.
func setCC(e *Event, cwnd, ssthresh int, srtt time.Duration) {
	e.Cwnd = &cwnd
	if ssthresh < 1<<30 {
		e.Ssthresh = &ssthresh
	}
	if srtt > 0 {
		s := srtt.Seconds()
		e.SRTT = &s
	}
}

// engineState records in e (the "recv" or "timer" event just traced) the
// engine's cwnd, ssthresh and srtt after it handled the segment or timer,
// so the congestion state is known at every ACK, not only at sends.
func (c *Conn) engineState(e *Event) {
	if c.tc == nil {
		return
	}
	in := c.tc.Info()
	setCC(e, in.SndCwnd, in.SndSsthresh, in.RTT)
	c.rateState(e)
}

// rateState records in e the rate model of a controller with a state
// machine (BBR): pacing rate, bandwidth estimate, delivery rate, min RTT
// and state. CUBIC and Reno events stay as they were.
func (c *Conn) rateState(e *Event) {
	if c.tc == nil {
		return
	}
	ci, pacing, drate := c.tc.RateInfo()
	if ci.State == "" {
		return
	}
	e.CCState = ci.State
	e.Pacing = &pacing
	if ci.BwEstimate > 0 {
		e.BW = &ci.BwEstimate
	}
	if ci.BwLo > 0 {
		e.BwLo = &ci.BwLo
	}
	if drate > 0 {
		e.Delivery = &drate
	}
	if ci.MinRTT > 0 {
		m := ci.MinRTT.Seconds()
		e.MinRTT = &m
	}
}

// SetKeepAlive turns keepalive probes on or off (SO_KEEPALIVE).
func (c *Conn) SetKeepAlive(on bool) {
	c.trace(Event{Kind: KindApp, Note: fmt.Sprintf("keepalive %v", on)})
	c.tc.SetKeepAlive(on)
	c.kick()
}

// SetUserTimeout sets TCP_USER_TIMEOUT: how long sent data may stay
// unacknowledged before the connection is dropped (0 = tcp_retries2 rules).
func (c *Conn) SetUserTimeout(d time.Duration) {
	c.trace(Event{Kind: KindApp, Note: fmt.Sprintf("user timeout %v", d)})
	c.tc.SetUserTimeout(d)
	c.kick()
}

// Done reports whether the connection has reached CLOSED (Closed says when).
func (c *Conn) Done() bool { return c.gone }

// Engine returns the underlying TCP engine.
func (c *Conn) Engine() *tcp.Conn { return c.tc }

// Host returns the host the connection belongs to.
func (c *Conn) Host() *Host { return c.h }

// State returns the engine's state.
func (c *Conn) State() tcp.State {
	if c.tc == nil {
		return tcp.Closed
	}
	return c.tc.State()
}

// Write queues p for sending; data the engine's send buffer cannot take yet
// is kept and pushed as the buffer drains.
func (c *Conn) Write(p []byte) {
	if c.gone {
		c.trace(Event{Kind: KindApp, Note: fmt.Sprintf("write %d bytes", len(p)), Err: "connection closed"})
		return
	}
	c.pending = append(c.pending, p...)
	c.trace(Event{Kind: KindApp, Note: fmt.Sprintf("write %d bytes", len(p))})
	c.kick()
}

// CloseWrite sends a FIN once the queued data is sent (shutdown(SHUT_WR)).
func (c *Conn) CloseWrite() {
	c.trace(Event{Kind: KindApp, Note: "shutdown write"})
	c.wantCloseWrite = true
	c.kick()
}

// Close closes the connection once the queued data has been handed to the
// engine.
func (c *Conn) Close() {
	c.trace(Event{Kind: KindApp, Note: "close"})
	c.wantClose = true
	c.closing = true
	c.kick()
}

// Abort resets the connection now.
func (c *Conn) Abort() {
	c.trace(Event{Kind: KindApp, Note: "abort"})
	c.pending = nil
	c.tc.Abort()
	c.kick()
}

// PauseReading stops (true) or resumes (false) reading from the engine, so
// the receive buffer fills up and the advertised window closes.
func (c *Conn) PauseReading(pause bool) {
	if pause {
		c.trace(Event{Kind: KindApp, Note: "stop reading"})
	} else {
		c.trace(Event{Kind: KindApp, Note: "resume reading"})
	}
	c.paused = pause
	c.kick()
}

// Recv reads up to max bytes from the engine now, like one recv() call,
// handing them to OnData, and returns how many it read. It is the way to
// read from a connection whose automatic reading is paused (PauseReading).
func (c *Conn) Recv(max int) int {
	if c.gone || c.tc == nil || max <= 0 {
		return 0
	}
	buf := c.h.sim.readBuf[:min(max, len(c.h.sim.readBuf))]
	n, err := c.tc.Recv(buf)
	note := fmt.Sprintf("recv %d bytes", n)
	if err != nil {
		note += " (" + err.Error() + ")"
	}
	c.trace(Event{Kind: KindApp, Note: note})
	if n > 0 {
		c.BytesRead += int64(n)
		if c.handler.OnData != nil {
			c.handler.OnData(c, buf[:n])
		}
	}
	c.kick()
	return n
}

func (c *Conn) label() string { return c.Tuple.Local.String() + ">" + c.Tuple.Remote.String() }

func (c *Conn) trace(e Event) {
	e.T = c.h.sim.Elapsed()
	e.Host = c.h.Name
	e.Conn = c.label()
	e.port = c.Tuple.Local.Port()
	c.h.sim.trace.add(e)
}

func (c *Conn) traceSeg(kind string, seg *tcp.Segment, note string) *Event {
	e := Event{Kind: kind, Note: note}
	fillSeg(&e, seg)
	e.hasAck = seg.Flags&wire.TCPFlagACK != 0
	if kind == KindSend {
		e.relSeq, e.relAck = seg.Seq-c.iss, seg.Ack-c.irs
		if seg.Options.NumSACK > 0 {
			e.relOpts = optString(&seg.Options, c.irs)
		}
	} else {
		e.relSeq, e.relAck = seg.Seq-c.irs, seg.Ack-c.iss
		if seg.Options.NumSACK > 0 {
			e.relOpts = optString(&seg.Options, c.iss)
		}
	}
	if seg.Flags&wire.TCPFlagRST != 0 && seg.Flags&wire.TCPFlagACK == 0 && kind == KindRecv && !c.haveIRS {
		e.relSeq = seg.Seq
	}
	c.trace(e)
	tr := c.h.sim.trace
	return &tr.Events[len(tr.Events)-1]
}

// emit is the engine's output callback.
func (c *Conn) emit(seg *tcp.Segment) {
	if seg.Flags&wire.TCPFlagSYN != 0 && !c.haveISS {
		c.iss, c.haveISS = seg.Seq, true
	}
	if seg.Flags&wire.TCPFlagSYN != 0 && seg.Flags&wire.TCPFlagACK != 0 && !c.haveIRS {
		c.irs, c.haveIRS = seg.Ack-1, true
	}
	rtx, dup := false, false
	if n := seg.Len(); n > 0 {
		end := seg.Seq + n
		if c.haveSndMax && seqLT(seg.Seq, c.sndMax) {
			rtx = true
		}
		if !c.haveSndMax || seqLT(c.sndMax, end) {
			c.sndMax, c.haveSndMax = end, true
		}
	} else if seg.Flags == wire.TCPFlagACK {
		// A duplicate ACK repeats the previous ACK, window and sequence number
		// (a zero window makes it a window probe answer, not a loss signal).
		if c.haveLastAck && seg.Ack == c.lastAck && seg.Window == c.lastWin && seg.Window != 0 && seg.Seq == c.lastSeq &&
			c.haveSndMax && seg.Seq == c.sndMax {
			dup = true
		}
		c.lastAck, c.lastWin, c.lastSeq, c.haveLastAck = seg.Ack, seg.Window, seg.Seq, true
	}
	if seg.Flags&wire.TCPFlagACK != 0 && seg.Len() > 0 {
		// Data or FIN: a following pure ACK repeating its ack and window
		// (at the next sequence number) is a duplicate too.
		c.lastAck, c.lastWin, c.lastSeq, c.haveLastAck = seg.Ack, seg.Window, seg.Seq+seg.Len(), true
	}
	e := c.traceSeg(KindSend, seg, "")
	e.Rtx, e.Dup = rtx, dup
	if c.haveCC {
		setCC(e, c.cc.Cwnd, c.cc.Ssthresh, c.cc.SRTT)
		c.haveCC = false
		c.rateState(e)
	}
	if rtx {
		c.Retransmits++
	}
	if dup {
		c.DupAcks++
	}
	c.SegsOut++
	c.h.transmit(c.Tuple.Local, c.Tuple.Remote, seg)
}

func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

// kick runs everything that may follow a change: pushes pending data,
// collects output, reports state changes and errors, delivers data to the
// application and re-arms the timer.
func (c *Conn) kick() {
	if c.gone || c.tc == nil {
		return
	}
	if c.kicking {
		c.again = true
		return
	}
	c.kicking = true
	now := c.h.sim.now
	for i := 0; i < 1000; i++ {
		c.again = false
		if len(c.pending) > 0 && c.tc.State() != tcp.Closed {
			n, err := c.tc.Send(c.pending)
			if n > 0 {
				c.BytesWritten += int64(n)
				c.pending = c.pending[n:]
			}
			if err != nil {
				c.trace(Event{Kind: KindApp, Note: fmt.Sprintf("write failed, %d bytes unsent", len(c.pending)), Err: err.Error()})
				c.pending = nil
			}
		}
		if len(c.pending) == 0 && c.wantCloseWrite {
			c.wantCloseWrite = false
			if err := c.tc.CloseWrite(); err != nil {
				c.trace(Event{Kind: KindApp, Note: "shutdown write failed", Err: err.Error()})
			}
		}
		if len(c.pending) == 0 && c.wantClose {
			c.wantClose = false
			if err := c.tc.Close(); err != nil {
				c.trace(Event{Kind: KindApp, Note: "close failed", Err: err.Error()})
			}
		}
		c.observe()
		c.tc.Output(now, c.emit)
		c.observe()
		if !c.paused && !c.eof && !c.closing {
			readBuf := c.h.sim.readBuf
			for c.tc.Readable() > 0 {
				n, err := c.tc.Recv(readBuf)
				if n > 0 {
					c.again = true // reading may open the window: collect output again
					c.BytesRead += int64(n)
					if c.handler.OnData != nil {
						c.handler.OnData(c, readBuf[:n])
					}
				}
				if err != nil || n == 0 {
					break
				}
			}
			if c.tc.Readable() == 0 && c.peerFinished() {
				if _, err := c.tc.Recv(readBuf); err == io.EOF {
					c.eof = true
					c.trace(Event{Kind: KindApp, Note: "read EOF"})
					if c.handler.OnEOF != nil {
						c.handler.OnEOF(c)
					}
				}
			}
		}
		if !c.again {
			break
		}
	}
	c.kicking = false
	c.observe()
	if c.tc.State() == tcp.Closed {
		c.finish()
		return
	}
	c.armTimer()
}

// peerFinished reports whether the peer's FIN has been received.
func (c *Conn) peerFinished() bool {
	switch c.tc.State() {
	case tcp.CloseWait, tcp.LastAck, tcp.Closing, tcp.TimeWait:
		return true
	}
	return false
}

// observe records state transitions and errors.
func (c *Conn) observe() {
	st := c.tc.State()
	if st != c.state {
		c.trace(Event{Kind: KindState, From: c.state.String(), To: st.String()})
		c.state = st
		if st == tcp.Established && !c.opened {
			c.opened = true
			c.Established = c.h.sim.Elapsed()
			if ck := c.tc.PeerFastOpenCookie(); c.tfo && len(ck) > 0 {
				c.h.tfoCache[c.Tuple.Remote.Addr()] = ck
				c.trace(Event{Kind: KindNote, Note: fmt.Sprintf("Fast Open cookie %x cached for %v", ck, c.Tuple.Remote.Addr())})
			}
			if c.tfo && c.tc.SynDataAcked() {
				c.trace(Event{Kind: KindNote, Note: "Fast Open: the SYN-ACK acknowledged the SYN data"})
			}
			if c.handler.OnOpen != nil {
				c.handler.OnOpen(c)
			}
		}
	}
	if err := c.tc.Err(); err != nil && !c.errSeen {
		c.errSeen = true
		c.Err = err
		c.trace(Event{Kind: KindError, Err: errString(err)})
	}
}

// errString names the errno, e.g. "ETIMEDOUT (connection timed out)".
func errString(err error) string {
	if n := ErrnoName(err); n != err.Error() {
		return n + " (" + err.Error() + ")"
	}
	return err.Error()
}

// ErrnoName returns the symbolic name of the errno err wraps (ETIMEDOUT,
// ECONNRESET, ...), or err's text.
func ErrnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		names := map[syscall.Errno]string{
			syscall.ETIMEDOUT: "ETIMEDOUT", syscall.ECONNRESET: "ECONNRESET", syscall.ECONNREFUSED: "ECONNREFUSED",
			syscall.EPIPE: "EPIPE", syscall.ECONNABORTED: "ECONNABORTED", syscall.EHOSTUNREACH: "EHOSTUNREACH",
		}
		if n, ok := names[errno]; ok {
			return n
		}
	}
	return err.Error()
}

func (c *Conn) finish() {
	if c.gone {
		return
	}
	c.gone = true
	c.timerGen++
	c.Closed = c.h.sim.Elapsed()
	if c.h.conns[c.Tuple] == c {
		delete(c.h.conns, c.Tuple)
	}
	if c.handler.OnClose != nil && !c.closedCbk {
		c.closedCbk = true
		c.handler.OnClose(c)
	}
}

func (c *Conn) armTimer() {
	d := c.tc.Deadline()
	if d.Equal(c.timerAt) {
		return
	}
	c.timerAt = d
	c.timerGen++
	if d.IsZero() {
		return
	}
	gen := c.timerGen
	c.h.sim.schedule(d, func() {
		if c.gone || gen != c.timerGen {
			return
		}
		c.timerAt = time.Time{}
		before, st := c.h.Counters, c.tc.State()
		c.tc.Timeout(c.h.sim.now)
		note := timerNote(&before, &c.h.Counters)
		if note == "timer" && c.tc.State() == tcp.Closed {
			switch st {
			case tcp.TimeWait:
				note = "timer: TIME-WAIT over"
			case tcp.FinWait2:
				note = "timer: FIN-WAIT-2 timeout"
			}
		}
		c.trace(Event{Kind: KindTimer, Note: note})
		tr := c.h.sim.trace
		c.engineState(&tr.Events[len(tr.Events)-1])
		c.kick()
	})
}

// timerNote says what a timer did, from the counters it moved.
func timerNote(b, a *tcp.Counters) string {
	var what []string
	if a.TCPTimeouts > b.TCPTimeouts {
		what = append(what, "retransmission timeout")
	}
	if a.TCPLossProbes > b.TCPLossProbes {
		what = append(what, "tail loss probe")
	}
	if a.TCPKeepAlive > b.TCPKeepAlive {
		what = append(what, "keepalive probe")
	}
	if a.TCPWinProbe > b.TCPWinProbe {
		what = append(what, "zero-window probe")
	}
	if a.DelayedACKs > b.DelayedACKs {
		what = append(what, "delayed ACK")
	}
	if a.TCPAbortOnTimeout > b.TCPAbortOnTimeout || a.AttemptFails > b.AttemptFails {
		what = append(what, "gave up")
	}
	if len(what) == 0 {
		return "timer"
	}
	return "timer: " + strings.Join(what, ", ")
}
