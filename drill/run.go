package drill

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// maxSteps bounds the timer events of one run.
const maxSteps = 2000000

// DefaultTolerance is packetdrill's default --tolerance_usecs (4 ms).
const DefaultTolerance = 4 * time.Millisecond

// Default addresses of packetdrill's test network.
var (
	LocalV4  = netip.MustParseAddr("192.168.0.1")
	RemoteV4 = netip.MustParseAddr("192.0.2.1")
	LocalV6  = netip.MustParseAddr("fd3d:fa7b:d17d::1")
	RemoteV6 = netip.MustParseAddr("fd3d:a0b:17d6::1")
)

// Options configure a run.
type Options struct {
	// Tolerance is how far an event may be from its scripted time
	// (default DefaultTolerance).
	Tolerance time.Duration
	// IPv6 runs the script over the IPv6 address pair.
	IPv6 bool
	// Config is the starting TCP configuration (nil: tcp.DefaultConfig).
	Config *tcp.Config
	// Dir resolves files named by shell lines (the script's directory).
	Dir string
	// Log, if set, receives a trace of every event and packet.
	Log io.Writer
}

// RunFile parses and runs the script in path.
func RunFile(path string, opt Options) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s, err := Parse(string(b))
	if err != nil {
		return err
	}
	if opt.Dir == "" {
		opt.Dir = filepath.Dir(path)
	}
	return Run(s, opt)
}

// The remote side's initial sequence number: script sequence numbers of
// inbound packets are relative to it. Chosen near the wrap to exercise
// modular arithmetic.
const remoteISN = 0xfffff000

// ListenPort is the port bind() gives a socket and connect() dials.
const ListenPort = 8080

// remotePort is the remote's port for connections to our listeners.
const remotePort = 47000

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type runner struct {
	opt   Options
	tol   time.Duration
	cfg   tcp.Config
	now   time.Time
	local netip.Addr
	peer  netip.Addr

	fds    map[int]*socket
	flows  []*flow
	flowBy map[tcp.Tuple]*flow
	cur    *flow // connection the next inbound packet and python block address
	out    []outPkt

	pending []*pendingCall // blocked system calls, oldest first
	err     error          // failure found while time advanced

	nextPort uint16
	key      [16]byte
	cookies  map[netip.Addr][]byte // Fast Open client cookie cache
	ev       *Event                // event being run
	last     time.Duration         // script time of the previous event
	buf      []byte
	pollWake time.Time

	localOverride, peerOverride netip.Addr
	strictSegments              bool
	steps                       int
}

type flow struct {
	t         tcp.Tuple
	c         *tcp.Conn
	localISN  uint32
	haveISN   bool
	anchored  bool   // localISN set from the script's SYN line
	tsOff     uint32 // ustack's TS val minus the script's
	haveTSOff bool
	listener  *socket // set while a child waits to be accepted
	queued    bool
	sock      *socket
}

type outPkt struct {
	at    time.Time
	f     *flow
	seq   uint32
	ack   uint32
	flags uint8
	win   uint16
	opts  []byte
	plen  int
	urg   uint16
	ecn   uint8
}

// Run runs a parsed script against ustack's TCP engine on virtual time.
// It returns nil when every line behaved as scripted, else an *Error
// naming the first line that did not.
func Run(s *Script, opt Options) error {
	r := &runner{
		opt:      opt,
		tol:      opt.Tolerance,
		fds:      map[int]*socket{},
		flowBy:   map[tcp.Tuple]*flow{},
		now:      epoch,
		nextPort: 40000,
		cookies:  map[netip.Addr][]byte{},
		buf:      make([]byte, 70000),
	}
	if r.tol == 0 {
		r.tol = DefaultTolerance
	}
	if opt.Config != nil {
		r.cfg = *opt.Config
	} else {
		r.cfg = tcp.DefaultConfig()
	}
	for i := range r.key {
		r.key[i] = byte(i*7 + 1)
	}
	for _, o := range s.Options {
		switch o.Name {
		case "tolerance_usecs":
			v, err := strconv.Atoi(o.Value)
			if err != nil || v < 0 {
				return &Error{Line: o.Line, Msg: "bad --tolerance_usecs value " + o.Value}
			}
			r.tol = time.Duration(v) * time.Microsecond
		case "local_ip", "remote_ip":
			a, err := netip.ParseAddr(o.Value)
			if err != nil {
				return &Error{Line: o.Line, Msg: "bad --" + o.Name + " " + o.Value}
			}
			if o.Name == "local_ip" {
				r.localOverride = a
			} else {
				r.peerOverride = a
			}
		case "tcp_ts_tick_usecs":
			if o.Value != "1000" {
				return &Error{Line: o.Line, Msg: "ustack's timestamp clock ticks every 1000 us; --tcp_ts_tick_usecs=" + o.Value + " is unsupported"}
			}
		case "strict_segments":
			r.strictSegments = true
		case "ip_version":
			switch o.Value {
			case "ipv4":
				r.opt.IPv6 = false
			case "ipv6":
				r.opt.IPv6 = true
			default:
				return &Error{Line: o.Line, Msg: "unsupported --ip_version " + o.Value}
			}
		default:
			return &Error{Line: o.Line, Msg: "unsupported script option --" + o.Name}
		}
	}
	r.local, r.peer = LocalV4, RemoteV4
	if r.opt.IPv6 {
		r.local, r.peer = LocalV6, RemoteV6
	}
	if r.localOverride.IsValid() {
		r.local = r.localOverride
	}
	if r.peerOverride.IsValid() {
		r.peer = r.peerOverride
	}
	if r.local.Is4() != r.peer.Is4() {
		return &Error{Msg: fmt.Sprintf("local address %v and remote address %v are of different families", r.local, r.peer)}
	}
	for _, ev := range s.Events {
		r.ev = ev
		if err := r.event(ev); err != nil {
			return err
		}
		if r.err != nil {
			return r.err
		}
	}
	// Everything the script expected has happened; leftover packets sent
	// up to the last event's time were not expected.
	if err := r.noStrayPackets(nil); err != nil {
		return err
	}
	for len(r.pending) > 0 {
		// let blocked calls finish (or time out) as scripted
		p := r.pending[0]
		r.ev = p.ev
		if err := r.advance(p.limAt); err != nil {
			return err
		}
		if err := r.noStrayPackets(nil); err != nil {
			return err
		}
		if len(r.pending) > 0 && r.pending[0] == p {
			return &Error{Line: p.ev.Line, Msg: fmt.Sprintf("%s call still blocked at the end of the script", p.ev.Syscall.Name)}
		}
	}
	return nil
}

func (r *runner) logf(format string, args ...any) {
	if r.opt.Log != nil {
		fmt.Fprintf(r.opt.Log, "%9.6f ", r.elapsed().Seconds())
		fmt.Fprintf(r.opt.Log, format, args...)
		fmt.Fprintln(r.opt.Log)
	}
}

func (r *runner) elapsed() time.Duration { return r.now.Sub(epoch) }

func fmtT(d time.Duration) string { return fmt.Sprintf("%.6f", d.Seconds()) }

func (r *runner) failf(ev *Event, format string, args ...any) error {
	line := 0
	if ev != nil {
		line = ev.Line
	}
	return &Error{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// eventTime resolves an event's scripted start time.
func (r *runner) eventTime(ev *Event) time.Duration {
	switch ev.Time.Kind {
	case TimeRelative:
		return r.last + ev.Time.T
	case TimeAny:
		return r.elapsed()
	}
	return ev.Time.T
}

func (r *runner) event(ev *Event) error {
	t := r.eventTime(ev)
	if ev.Kind == EvPacket && !ev.Packet.Inbound {
		hi := t
		if ev.Time.HasRange {
			hi = ev.Time.RangeEnd
			if ev.Time.RangeRel {
				hi = r.last + ev.Time.RangeEnd
			}
		}
		at, err := r.expectOut(ev, t, hi, ev.Time.Kind == TimeAny)
		if err != nil {
			return err
		}
		if ev.Time.Kind == TimeAny || ev.Time.HasRange {
			r.last = at
		} else {
			r.last = t
		}
		return nil
	}
	if t < r.elapsed()-r.tol && ev.Time.Kind != TimeAny {
		return r.failf(ev, "scripted time %s is before the current time %s", fmtT(t), fmtT(r.elapsed()))
	}
	if err := r.advance(epoch.Add(t)); err != nil {
		return err
	}
	if err := r.noStrayPackets(ev); err != nil {
		return err
	}
	r.last = t
	switch ev.Kind {
	case EvPacket:
		err := r.inject(ev)
		if err != nil {
			return err
		}
	case EvSyscall:
		if err := r.syscall(ev, t); err != nil {
			return err
		}
	case EvShell:
		if err := r.shell(ev, ev.Text, 0); err != nil {
			return err
		}
	case EvPython:
		if err := r.python(ev); err != nil {
			return err
		}
	}
	r.flush()
	return r.err
}

// noStrayPackets fails if ustack sent a packet the script did not expect
// before this event.
func (r *runner) noStrayPackets(ev *Event) error {
	if len(r.out) == 0 {
		return nil
	}
	p := r.out[0]
	line := 0
	where := "after the last line"
	if ev != nil {
		line = ev.Line
		where = "before this line"
	}
	return &Error{Line: line, Msg: fmt.Sprintf("unexpected outbound packet %s: %s %s", where, fmtT(p.at.Sub(epoch)), r.fmtOut(&p))}
}

// conns returns the live engine connections in creation order.
func (r *runner) nextDeadline() time.Time {
	var d time.Time
	for _, f := range r.flows {
		if f.c == nil || f.c.State() == tcp.Closed {
			continue
		}
		if t := f.c.Deadline(); !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for _, p := range r.pending {
		if !p.wake.IsZero() && (d.IsZero() || p.wake.Before(d)) {
			d = p.wake
		}
		if lim := p.limit(); d.IsZero() || lim.Before(d) {
			d = lim
		}
	}
	return d
}

// advance moves virtual time to t, firing timers on the way.
func (r *runner) advance(t time.Time) error {
	stuck := 0
	for r.err == nil {
		r.steps++
		if r.steps > maxSteps {
			return r.failf(r.ev, "more than %d timer events: giving up at %s", maxSteps, fmtT(r.elapsed()))
		}
		d := r.nextDeadline()
		if d.IsZero() || d.After(t) {
			if t.After(r.now) {
				r.now = t
			}
			r.flush()
			break
		}
		if d.Before(r.now) {
			d = r.now
		}
		if d.Equal(r.now) {
			stuck++
			if stuck > 10000 {
				return r.failf(r.ev, "engine timer stuck at %s (Deadline does not move after Timeout)", fmtT(r.elapsed()))
			}
		} else {
			stuck = 0
		}
		r.now = d
		for _, f := range r.flows {
			if f.c == nil || f.c.State() == tcp.Closed {
				continue
			}
			if dl := f.c.Deadline(); !dl.IsZero() && !dl.After(r.now) {
				f.c.Timeout(r.now)
			}
		}
		r.flush()
	}
	return r.err
}

// flush collects every segment the connections want to send now, moves
// established children to their accept queues and retries a blocked call.
func (r *runner) flush() {
	for _, f := range r.flows {
		if f.c == nil {
			continue
		}
		f.c.Output(r.now, func(seg *tcp.Segment) { r.transmit(f, seg) })
	}
	for _, f := range r.flows {
		if f.listener == nil || f.c == nil {
			continue
		}
		st := f.c.State()
		switch {
		case st == tcp.Closed && !f.queued:
			f.listener.dropChild(f)
			f.listener = nil
		case st != tcp.SynReceived && st != tcp.Closed && !f.queued:
			f.queued = true
			f.listener.acceptQ = append(f.listener.acceptQ, f)
		}
	}
	r.retryPending()
}

// transmit builds the IP packet for a segment ustack sends, parses it
// back like a sniffer would and queues it for matching.
func (r *runner) transmit(f *flow, seg *tcp.Segment) {
	pkt, err := r.build(f.t.Local, f.t.Remote, seg.Seq, seg.Ack, seg.Flags, seg.Window, encodeWireOpts(&seg.Options), seg.Payload)
	if err != nil {
		r.err = r.failf(r.ev, "building outbound packet: %v", err)
		return
	}
	p, err := r.parsePacket(pkt)
	if err != nil {
		r.err = r.failf(r.ev, "ustack sent a malformed packet: %v", err)
		return
	}
	if p.t.Local != f.t.Remote || p.t.Remote != f.t.Local {
		r.err = r.failf(r.ev, "outbound packet addresses %v -> %v", p.t.Remote, p.t.Local)
		return
	}
	o := outPkt{at: r.now, f: f, seq: p.seq, ack: p.ack, flags: p.flags, win: p.win, opts: p.opts, plen: p.plen, urg: p.urg, ecn: p.ecn}
	if o.flags&wire.TCPFlagSYN != 0 && !f.haveISN {
		f.localISN, f.haveISN = o.seq, true
	}
	r.logf("> %s", r.fmtOut(&o))
	r.out = append(r.out, o)
}

func encodeWireOpts(o *wire.TCPOptions) []byte {
	n := o.Len()
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	o.Encode(b)
	return b
}

// build writes an IPv4 or IPv6 packet carrying one TCP segment with the
// raw option bytes given (padded with EOL to a multiple of 4).
func (r *runner) build(src, dst netip.AddrPort, seq, ack uint32, flags uint8, win uint16, opts []byte, payload []byte) ([]byte, error) {
	return r.buildFull(src, dst, seq, ack, flags, win, 0, 0, opts, payload)
}

func (r *runner) buildFull(src, dst netip.AddrPort, seq, ack uint32, flags uint8, win, urg uint16, ecn uint8, opts []byte, payload []byte) ([]byte, error) {
	for len(opts)%4 != 0 {
		opts = append(opts, wire.TCPOptEOL)
	}
	if len(opts) > 40 {
		return nil, errors.New("TCP options longer than 40 bytes")
	}
	iph := 20
	if src.Addr().Is6() {
		iph = 40
	}
	tl := 20 + len(opts) + len(payload)
	buf := make([]byte, iph+tl)
	var err error
	if iph == 20 {
		_, err = wire.BuildIPv4(buf, &wire.IPv4Header{TOS: ecn, Protocol: wire.ProtoTCP, TTL: 64, DF: true, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: tl})
	} else {
		_, err = wire.BuildIPv6(buf, &wire.IPv6Header{TrafficClass: ecn, NextHeader: wire.ProtoTCP, HopLimit: 64, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: tl})
	}
	if err != nil {
		return nil, err
	}
	seg := buf[iph:]
	body := make([]byte, len(opts)+len(payload))
	copy(body, opts)
	copy(body[len(opts):], payload)
	h := wire.TCPHeader{SrcPort: src.Port(), DstPort: dst.Port(), Seq: seq, Ack: ack, Flags: flags, Window: win, Urgent: urg}
	if _, err := wire.BuildTCP(seg, &h, body, 0); err != nil {
		return nil, err
	}
	seg[12] = uint8((20+len(opts))/4) << 4
	seg[16], seg[17] = 0, 0
	wire.TCP(seg).ComputeChecksum(wire.PseudoHeaderSum(src.Addr(), dst.Addr(), wire.ProtoTCP, tl))
	return buf, nil
}

type parsedPkt struct {
	t        tcp.Tuple // Local = destination, Remote = source
	seq, ack uint32
	flags    uint8
	win      uint16
	opts     []byte
	plen     int
	urg      uint16
	ecn      uint8
	seg      tcp.Segment
}

// parsePacket takes an IP packet apart with package wire, checking the
// checksums.
func (r *runner) parsePacket(pkt []byte) (*parsedPkt, error) {
	var src, dst netip.Addr
	var payload []byte
	var ecn uint8
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		ip, err := wire.ParseIPv6(pkt)
		if err != nil {
			return nil, err
		}
		proto, pl, err := ip.UpperLayer()
		if err != nil {
			return nil, err
		}
		if proto != wire.ProtoTCP {
			return nil, fmt.Errorf("protocol %d", proto)
		}
		src, dst, payload = ip.Src(), ip.Dst(), pl
		ecn = ip.TrafficClass() & 3
	} else {
		ip, err := wire.ParseIPv4(pkt)
		if err != nil {
			return nil, err
		}
		if !ip.ValidChecksum() {
			return nil, errors.New("bad IPv4 header checksum")
		}
		if ip.Protocol() != wire.ProtoTCP {
			return nil, fmt.Errorf("protocol %d", ip.Protocol())
		}
		src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
		ecn = ip.TOS() & 3
	}
	t, err := wire.ParseTCP(payload)
	if err != nil {
		return nil, err
	}
	if !t.ValidChecksum(wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(payload))) {
		return nil, errors.New("bad TCP checksum")
	}
	p := &parsedPkt{
		t:     tcp.Tuple{Local: netip.AddrPortFrom(dst, t.DstPort()), Remote: netip.AddrPortFrom(src, t.SrcPort())},
		seq:   t.Seq(),
		ack:   t.Ack(),
		flags: t.Flags(),
		win:   t.Window(),
		opts:  append([]byte(nil), t.Options()...),
		plen:  len(t.Payload()),
		urg:   t.Urgent(),
		ecn:   ecn,
	}
	p.seg = tcp.Segment{Seq: p.seq, Ack: p.ack, Flags: p.flags, Window: p.win, Urgent: t.Urgent(), Payload: t.Payload()}
	if err := t.ParseOptions(&p.seg.Options); err != nil {
		return nil, err
	}
	return p, nil
}

// targetTuple picks the connection an inbound packet belongs to.
func (r *runner) targetTuple(pk *Packet) (tcp.Tuple, *flow, error) {
	pureSYN := pk.Flags&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN
	ls := r.firstListener()
	curDead := r.cur == nil || r.cur.c == nil || r.cur.c.State() == tcp.Closed || r.cur.c.State() == tcp.TimeWait
	if r.cur != nil && !(pureSYN && curDead && ls != nil) {
		return r.cur.t, r.cur, nil
	}
	if ls != nil {
		t := tcp.Tuple{Local: ls.local, Remote: netip.AddrPortFrom(r.peer, remotePort)}
		return t, r.flowBy[t], nil
	}
	return tcp.Tuple{}, nil, errors.New("no socket to receive the inbound packet (no listener or connection yet)")
}

func (r *runner) firstListener() *socket {
	best := -1
	for fd, s := range r.fds {
		if s.listening && (best < 0 || fd < best) {
			best = fd
		}
	}
	if best < 0 {
		return nil
	}
	return r.fds[best]
}

// inject builds an inbound packet and delivers it through the parser and
// demultiplexer.
func (r *runner) inject(ev *Event) error {
	pk := ev.Packet
	t, f, err := r.targetTuple(pk)
	if err != nil {
		return r.failf(ev, "%v", err)
	}
	seq := remoteISN + pk.Seq
	var ack uint32
	if pk.HasAck {
		ack = pk.Ack
		if f != nil && f.haveISN {
			ack += f.localISN
		}
	}
	var tsOff, sackBase uint32
	if f != nil {
		if f.haveTSOff {
			tsOff = f.tsOff
		}
		if f.haveISN {
			sackBase = f.localISN
		}
	}
	if pk.AnyOpts {
		return r.failf(ev, "inbound packets need explicit options, not <...>")
	}
	opts, _, err := encodeOpts(pk.Opts, sackBase, tsOff)
	if err != nil {
		return r.failf(ev, "%v", err)
	}
	win := uint16(65535)
	if pk.HasWin {
		win = pk.Win
	}
	pkt, err := r.buildFull(t.Remote, t.Local, seq, ack, pk.Flags, win, pk.Urg, ecnBits[pk.ECN], opts, make([]byte, pk.Len))
	if err != nil {
		return r.failf(ev, "building inbound packet: %v", err)
	}
	p, err := r.parsePacket(pkt)
	if err != nil {
		return r.failf(ev, "inbound packet does not parse: %v", err)
	}
	r.logf("< %s", r.fmtPkt(pk.Flags, pk.Seq, uint32(pk.Len), ack-sackBase, pk.Flags&wire.TCPFlagACK != 0, win, opts, sackBase, tsOff, false))
	r.deliver(p)
	return nil
}

// deliver demultiplexes one parsed inbound packet.
func (r *runner) deliver(p *parsedPkt) {
	seg := &p.seg
	f := r.flowBy[p.t]
	ls := r.listenerOn(p.t.Local)
	if f != nil && f.c != nil && f.c.State() == tcp.TimeWait && ls != nil && f.c.AcceptsSYN(seg) {
		// a new incarnation of a connection in TIME-WAIT (RFC 6191)
		r.passiveOpenISS(ls, p, f.c.NextISS())
		return
	}
	if f != nil && f.c != nil && f.c.State() != tcp.Closed {
		f.c.Input(seg, r.now)
		r.afterInput(f)
		return
	}
	if ls != nil && seg.Flags&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST) == wire.TCPFlagSYN {
		r.passiveOpen(ls, p)
		return
	}
	// No socket: answer like the kernel, with a RST unless it is one.
	if seg.Flags&wire.TCPFlagRST != 0 {
		return
	}
	rst, ok := tcp.ResetFor(seg)
	if !ok {
		return
	}
	if f == nil {
		f = &flow{t: p.t}
		r.addFlow(f)
	}
	r.transmit(f, &rst)
}

func (r *runner) afterInput(f *flow) {
	if f.c == nil {
		return
	}
	if c := f.c.PeerFastOpenCookie(); len(c) > 0 {
		r.cookies[f.t.Remote.Addr()] = c
	}
}

func (r *runner) addFlow(f *flow) {
	if old := r.flowBy[f.t]; old != nil {
		for i, x := range r.flows {
			if x == old {
				r.flows = append(r.flows[:i], r.flows[i+1:]...)
				break
			}
		}
	}
	r.flows = append(r.flows, f)
	r.flowBy[f.t] = f
}

func (r *runner) listenerOn(a netip.AddrPort) *socket {
	best := -1
	for fd, s := range r.fds {
		if s.listening && s.local.Port() == a.Port() && (best < 0 || fd < best) {
			best = fd
		}
	}
	if best < 0 {
		return nil
	}
	return r.fds[best]
}

func (r *runner) passiveOpen(ls *socket, p *parsedPkt) {
	r.passiveOpenISS(ls, p, tcp.ISN(&r.key, p.t, r.now))
}

func (r *runner) passiveOpenISS(ls *socket, p *parsedPkt, iss uint32) {
	cfg := ls.connConfig(r.cfg)
	c, err := tcp.NewPassive(cfg, p.t, iss, &p.seg, r.now)
	if err != nil {
		r.err = r.failf(r.ev, "engine refused the SYN: %v", err)
		return
	}
	f := &flow{t: p.t, c: c, listener: ls}
	if o := &p.seg.Options; o.HasFastOpen && ls.fastOpenQlen > 0 && r.cfg.FastOpen&tcp.FastOpenServer != 0 {
		keys := r.cfg.FastOpenKey
		if keys.IsZero() {
			keys.Primary = r.key
		}
		if o.CookieLen == 0 {
			ck := keys.Cookie(p.t.Remote.Addr(), p.t.Local.Addr())
			c.SetFastOpenCookie(ck[:])
		}
	}
	ls.applyAll(c)
	r.addFlow(f)
	r.cur = f
	ls.children = append(ls.children, f)
}

// expectOut waits for ustack's next packet and matches it against an
// outbound packet line expected between lo and hi (script times).
func (r *runner) expectOut(ev *Event, lo, hi time.Duration, anyTime bool) (time.Duration, error) {
	limit := epoch.Add(hi + r.tol)
	if anyTime {
		limit = r.now.Add(30 * 24 * time.Hour)
	}
	for len(r.out) == 0 {
		d := r.nextDeadline()
		if d.IsZero() || d.After(limit) {
			if !anyTime && limit.After(r.now) {
				if err := r.advance(limit); err != nil {
					return 0, err
				}
				if len(r.out) > 0 {
					break
				}
			}
			return 0, r.failf(ev, "expected outbound packet %s at %s but ustack sent nothing (waited until %s)", packetText(ev.Packet), fmtT(lo), fmtT(r.elapsed()))
		}
		if err := r.advance(d); err != nil {
			return 0, err
		}
	}
	p := r.out[0]
	r.out = r.out[1:]
	at := p.at.Sub(epoch)
	if err := r.match(ev, &p, limit); err != nil {
		return 0, err
	}
	if !anyTime && (at < lo-r.tol || at > hi+r.tol) {
		want := fmtT(lo)
		if hi != lo {
			want += "~" + fmtT(hi)
		}
		return 0, r.failf(ev, "outbound packet %s: expected at %s, sent at %s (tolerance %v)", packetText(ev.Packet), want, fmtT(at), r.tol)
	}
	return at, nil
}

// match compares one sent packet (plus, for a larger expected data
// segment, the following back-to-back segments: segmentation offload)
// with an expected packet line.
func (r *runner) match(ev *Event, p *outPkt, limit time.Time) error {
	pk := ev.Packet
	f := p.f
	if pk.Flags&wire.TCPFlagSYN != 0 && p.flags&wire.TCPFlagSYN != 0 && !f.anchored {
		// the script names ustack's ISN in its first SYN or SYN-ACK line
		f.localISN, f.anchored = p.seq-pk.Seq, true
	}
	rel := p.seq - f.localISN
	plen := p.plen
	flags := p.flags
	// TSO: one expected line may stand for several MSS-sized segments.
	if !r.strictSegments && plen > 0 && plen < pk.Len && rel == pk.Seq && flags&^(wire.TCPFlagPSH|wire.TCPFlagFIN) == pk.Flags&^(wire.TCPFlagPSH|wire.TCPFlagFIN) {
		last := *p
		for plen < pk.Len {
			for len(r.out) == 0 {
				d := r.nextDeadline()
				if d.IsZero() || d.After(limit) {
					return r.failf(ev, "expected %s\n  actual   %s (segments cover only %d of %d bytes)", packetText(pk), r.fmtOut(p), plen, pk.Len)
				}
				if err := r.advance(d); err != nil {
					return err
				}
			}
			n := r.out[0]
			if n.f != f || n.seq != last.seq+uint32(last.plen) || n.plen == 0 || last.flags&(wire.TCPFlagPSH|wire.TCPFlagFIN) != 0 {
				break
			}
			r.out = r.out[1:]
			plen += n.plen
			last = n
		}
		flags = last.flags
		merged := *p
		merged.plen = plen
		merged.flags = flags
		merged.ack = last.ack
		merged.win = last.win
		p = &merged
	}
	var diffs []string
	if flags != pk.Flags {
		diffs = append(diffs, "flags")
	}
	if rel != pk.Seq {
		diffs = append(diffs, "seq")
	}
	if plen != pk.Len {
		diffs = append(diffs, "length")
	}
	if pk.HasAck && p.ack-remoteISN != pk.Ack {
		diffs = append(diffs, "ack")
	}
	if pk.HasWin && p.win != pk.Win {
		diffs = append(diffs, "win")
	}
	if pk.HasUrg && p.urg != pk.Urg {
		diffs = append(diffs, "urg")
	}
	if pk.ECN != "" && !ecnMatch(pk.ECN, p.ecn) {
		diffs = append(diffs, fmt.Sprintf("ECN: IP ECN field %d", p.ecn))
	}
	if !pk.AnyOpts {
		want, tsAt, err := encodeOpts(pk.Opts, remoteISN, 0)
		if err != nil {
			return r.failf(ev, "%v", err)
		}
		// TS val is ustack's clock: not compared; the offset is learned
		// so later inbound TS ecr values echo it.
		if tsAt >= 0 && len(p.opts) >= tsAt+4 && len(want) == len(p.opts) {
			actualVal := binary.BigEndian.Uint32(p.opts[tsAt:])
			if !f.haveTSOff {
				f.tsOff, f.haveTSOff = actualVal-binary.BigEndian.Uint32(want[tsAt:]), true
			}
			copy(want[tsAt:tsAt+4], p.opts[tsAt:tsAt+4])
		}
		got := p.opts
		if string(padOpts(want)) != string(got) {
			diffs = append(diffs, "options")
		}
	}
	if len(diffs) > 0 {
		return r.failf(ev, "outbound packet mismatch (%s):\n  expected %s %s\n  actual   %s %s",
			strings.Join(diffs, ", "), fmtT(r.eventTimeNoAdv(ev)), packetText(pk), fmtT(p.at.Sub(epoch)), r.fmtOut(p))
	}
	return nil
}

func (r *runner) eventTimeNoAdv(ev *Event) time.Duration {
	if ev.Time.Kind == TimeRelative {
		return r.last + ev.Time.T
	}
	if ev.Time.Kind == TimeAny {
		return r.elapsed()
	}
	return ev.Time.T
}

// ecnBits are the IP ECN codepoints of the [..] markings.
var ecnBits = map[string]uint8{"": 0, "noecn": 0, "ect1": 1, "ect0": 2, "ect01": 2, "ce": 3}

func ecnMatch(want string, got uint8) bool {
	if want == "ect01" {
		return got == 1 || got == 2
	}
	return ecnBits[want] == got
}

func padOpts(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, wire.TCPOptEOL)
	}
	return b
}

// encodeOpts writes the options of a packet line in the order written.
// sackBase is added to SACK block edges, tsEcrAdd to the TS echo reply.
// It returns the offset of the TS value (or -1).
func encodeOpts(opts []PktOpt, sackBase, tsEcrAdd uint32) ([]byte, int, error) {
	var b []byte
	tsAt := -1
	for _, o := range opts {
		switch o.Kind {
		case OptNOP:
			b = append(b, wire.TCPOptNOP)
		case OptEOL:
			b = append(b, wire.TCPOptEOL)
		case OptMSS:
			b = append(b, wire.TCPOptMSS, 4, byte(o.Val>>8), byte(o.Val))
		case OptWScale:
			b = append(b, wire.TCPOptWScale, 3, byte(o.Val))
		case OptSACKOK:
			b = append(b, wire.TCPOptSACKPermitted, 2)
		case OptSACK:
			b = append(b, wire.TCPOptSACK, byte(2+8*len(o.Blocks)))
			for _, bl := range o.Blocks {
				b = binary.BigEndian.AppendUint32(b, bl[0]+sackBase)
				b = binary.BigEndian.AppendUint32(b, bl[1]+sackBase)
			}
		case OptTS:
			b = append(b, wire.TCPOptTimestamps, 10)
			tsAt = len(b)
			b = binary.BigEndian.AppendUint32(b, o.Val)
			b = binary.BigEndian.AppendUint32(b, o.Ecr+tsEcrAdd)
		case OptFO:
			b = append(b, wire.TCPOptFastOpen, byte(2+len(o.Cookie)))
			b = append(b, o.Cookie...)
		case OptFOExp:
			b = append(b, wire.TCPOptExperimental, byte(4+len(o.Cookie)), 0xF9, 0x89)
			b = append(b, o.Cookie...)
		}
	}
	if len(b) > 40 {
		return nil, -1, fmt.Errorf("TCP options take %d bytes (more than 40)", len(b))
	}
	return b, tsAt, nil
}

// packetText prints a packet line as written in the script.
func packetText(pk *Packet) string {
	var sb strings.Builder
	if pk.ECN != "" {
		fmt.Fprintf(&sb, "[%s] ", pk.ECN)
	}
	fmt.Fprintf(&sb, "%s %d:%d(%d)", flagText(pk.Flags), pk.Seq, pk.End, pk.Len)
	if pk.HasAck {
		fmt.Fprintf(&sb, " ack %d", pk.Ack)
	}
	if pk.HasWin {
		fmt.Fprintf(&sb, " win %d", pk.Win)
	}
	if pk.HasUrg {
		fmt.Fprintf(&sb, " urg %d", pk.Urg)
	}
	if pk.AnyOpts {
		sb.WriteString(" <...>")
	} else if pk.Opts != nil {
		b, _, _ := encodeOpts(pk.Opts, 0, 0)
		sb.WriteString(" " + optsText(b, 0, 0))
	}
	return sb.String()
}

func flagText(f uint8) string {
	var s string
	for _, c := range []struct {
		bit uint8
		ch  string
	}{{wire.TCPFlagSYN, "S"}, {wire.TCPFlagFIN, "F"}, {wire.TCPFlagRST, "R"}, {wire.TCPFlagPSH, "P"}, {wire.TCPFlagURG, "U"}, {wire.TCPFlagECE, "E"}, {wire.TCPFlagCWR, "W"}, {wire.TCPFlagACK, "."}} {
		if f&c.bit != 0 {
			s += c.ch
		}
	}
	if s == "" {
		s = "-"
	}
	return s
}

// fmtOut prints a packet ustack sent in script form (relative numbers).
func (r *runner) fmtOut(p *outPkt) string {
	f := p.f
	return r.fmtPkt(p.flags, p.seq-f.localISN, uint32(p.plen), p.ack-remoteISN, p.flags&wire.TCPFlagACK != 0, p.win, p.opts, remoteISN, f.tsOff, true)
}

func (r *runner) fmtPkt(flags uint8, seq, plen, ack uint32, hasAck bool, win uint16, opts []byte, sackBase, tsOff uint32, outbound bool) string {
	s := fmt.Sprintf("%s %d:%d(%d)", flagText(flags), seq, seq+plen, plen)
	if hasAck {
		s += fmt.Sprintf(" ack %d", ack)
	}
	s += fmt.Sprintf(" win %d", win)
	if len(opts) > 0 {
		if outbound {
			s += " " + optsText(opts, sackBase, tsOff)
		} else {
			s += " " + optsTextIn(opts, sackBase, tsOff)
		}
	}
	return s
}

// optsText prints raw option bytes in script syntax; SACK edges are made
// relative to sackBase, and TS val has tsOff subtracted.
func optsText(b []byte, sackBase, tsOff uint32) string {
	return optsFmt(b, sackBase, tsOff, 0)
}

func optsTextIn(b []byte, sackBase, tsEcrOff uint32) string {
	return optsFmt(b, sackBase, 0, tsEcrOff)
}

func optsFmt(b []byte, sackBase, valOff, ecrOff uint32) string {
	var parts []string
	for i := 0; i < len(b); {
		k := b[i]
		if k == wire.TCPOptNOP || k == wire.TCPOptEOL {
			if k == wire.TCPOptNOP {
				parts = append(parts, "nop")
			} else {
				parts = append(parts, "eol")
			}
			i++
			continue
		}
		if i+1 >= len(b) || b[i+1] < 2 || i+int(b[i+1]) > len(b) {
			parts = append(parts, fmt.Sprintf("bad option %d", k))
			break
		}
		l := int(b[i+1])
		v := b[i+2 : i+l]
		switch {
		case k == wire.TCPOptMSS && l == 4:
			parts = append(parts, fmt.Sprintf("mss %d", binary.BigEndian.Uint16(v)))
		case k == wire.TCPOptWScale && l == 3:
			parts = append(parts, fmt.Sprintf("wscale %d", v[0]))
		case k == wire.TCPOptSACKPermitted && l == 2:
			parts = append(parts, "sackOK")
		case k == wire.TCPOptSACK && (l-2)%8 == 0:
			s := "sack"
			for j := 0; j+8 <= len(v); j += 8 {
				s += fmt.Sprintf(" %d:%d", binary.BigEndian.Uint32(v[j:])-sackBase, binary.BigEndian.Uint32(v[j+4:])-sackBase)
			}
			parts = append(parts, s)
		case k == wire.TCPOptTimestamps && l == 10:
			parts = append(parts, fmt.Sprintf("TS val %d ecr %d", binary.BigEndian.Uint32(v)-valOff, binary.BigEndian.Uint32(v[4:])-ecrOff))
		case k == wire.TCPOptFastOpen:
			parts = append(parts, strings.TrimSpace(fmt.Sprintf("FO %x", v)))
		case k == wire.TCPOptExperimental && l >= 4 && v[0] == 0xF9 && v[1] == 0x89:
			parts = append(parts, strings.TrimSpace(fmt.Sprintf("FOEXP %x", v[2:])))
		default:
			parts = append(parts, fmt.Sprintf("opt%d %x", k, v))
		}
		i += l
	}
	return "<" + strings.Join(parts, ",") + ">"
}
