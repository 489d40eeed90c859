package tcpcopy

import (
	"errors"
	"net/netip"
	"sort"
	"time"

	"github.com/ustack/ustack/wire"
)

// AssemblerConfig tunes stream reconstruction. The zero value is usable.
type AssemblerConfig struct {
	// ServerPorts tells which side is the server for connections whose
	// handshake is not in the capture. Without it the side with the
	// well-known (or non-ephemeral, or lower) port is taken as the server.
	ServerPorts []uint16
	// MaxOutOfOrder bounds the bytes held per direction ahead of a hole;
	// beyond it the hole is declared a gap. Default 4 MiB.
	MaxOutOfOrder int
	// MaxSessionBytes bounds the stream bytes stored per session (both
	// directions); beyond it the session is marked Truncated. Default 64 MiB.
	MaxSessionBytes int
	// IdleTimeout ends a connection that has been silent this long in
	// capture time. Default 5 minutes.
	IdleTimeout time.Duration
	// Filter, if set, drops sessions it returns false for (decided on the
	// connection's first packet; dropped sessions cost no memory).
	Filter func(client, server netip.AddrPort) bool
}

// CaptureStats counts what the assembler saw.
type CaptureStats struct {
	Packets     int64     `json:"packets"`
	Bytes       int64     `json:"bytes"`
	NonIP       int64     `json:"non_ip"`
	NonTCP      int64     `json:"non_tcp"`
	Fragments   int64     `json:"fragments"`   // IP fragments (not reassembled, skipped)
	Undecodable int64     `json:"undecodable"` // malformed or cut-short IP/TCP headers
	CutShort    int64     `json:"cut_short"`   // frames shorter than on the wire (capture snap length)
	Stray       int64     `json:"stray"`       // segments of no known connection carrying nothing (late ACKs, RSTs)
	Sessions    int64     `json:"sessions"`
	Midstream   int64     `json:"midstream"` // sessions without a handshake in the capture (roles guessed)
	Filtered    int64     `json:"filtered"`
	Gaps        int64     `json:"gaps"`
	GapBytes    int64     `json:"gap_bytes"`
	Retransmits int64     `json:"retransmitted_segments"`
	OutOfOrder  int64     `json:"out_of_order_segments"`
	FirstTime   time.Time `json:"first_time"`
	LastTime    time.Time `json:"last_time"`
	// FirstUndecodable is the packet number of the first undecodable packet.
	FirstUndecodable int `json:"first_undecodable_packet,omitempty"`
}

// tombstoneTTL is how long (capture time) a finished connection's 4-tuple
// is remembered, so that its late ACKs and retransmissions are not taken
// for a new connection.
const tombstoneTTL = 10 * time.Second

type connKey struct{ a, b netip.AddrPort }

func makeKey(x, y netip.AddrPort) connKey {
	if x.Compare(y) < 0 {
		return connKey{x, y}
	}
	return connKey{y, x}
}

type oooSeg struct {
	seq  uint32
	data []byte
}

type half struct {
	started bool
	next    uint32 // next expected sequence number
	ooo     []oooSeg
	oooLen  int
	fin     bool
	finSeq  uint32
	finDone bool
}

type conn struct {
	key        connKey
	s          *Session // nil once finished (a tombstone)
	client     netip.AddrPort
	h          [2]half
	clientISN  uint32
	haveISN    bool
	stored     int
	last       time.Time
	prev, next *conn
	inTomb     bool
	filtered   bool
}

// connList is an intrusive doubly linked list ordered by last activity.
type connList struct{ head, tail *conn }

func (l *connList) remove(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

func (l *connList) pushBack(c *conn) {
	c.prev = l.tail
	c.next = nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

// Assembler rebuilds TCP sessions from packets. It is not safe for
// concurrent use. Finished sessions are passed to the emit function and
// then forgotten by the assembler; the Session belongs to the callee.
type Assembler struct {
	cfg        AssemblerConfig
	emit       func(*Session)
	conns      map[connKey]*conn
	active     connList
	tomb       connList
	nextID     int
	lastExpire time.Time
	Stats      CaptureStats
}

// NewAssembler returns an assembler that calls emit for every finished
// session (FIN both ways, RST, idle timeout, or Flush).
func NewAssembler(cfg AssemblerConfig, emit func(*Session)) *Assembler {
	if cfg.MaxOutOfOrder <= 0 {
		cfg.MaxOutOfOrder = 4 << 20
	}
	if cfg.MaxSessionBytes <= 0 {
		cfg.MaxSessionBytes = 64 << 20
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	return &Assembler{cfg: cfg, emit: emit, conns: make(map[connKey]*conn)}
}

// Open returns the number of connections in progress.
func (a *Assembler) Open() int { return len(a.conns) }

// Packet feeds one captured frame. Frames that are not IP/TCP or are
// malformed are counted in Stats, never fatal.
func (a *Assembler) Packet(p Packet) {
	a.Stats.Packets++
	a.Stats.Bytes += int64(len(p.Data))
	if p.OrigLen > len(p.Data) {
		a.Stats.CutShort++
	}
	ip, err := NetworkLayer(p.LinkType, p.Data)
	if err != nil {
		a.undecodable(p.Num)
		return
	}
	if ip == nil {
		a.Stats.NonIP++
		return
	}
	a.IP(p.Num, p.Time, ip)
}

func (a *Assembler) undecodable(num int) {
	if a.Stats.Undecodable == 0 {
		a.Stats.FirstUndecodable = num
	}
	a.Stats.Undecodable++
}

// IP feeds one IPv4 or IPv6 packet captured at ts; num is its packet number.
func (a *Assembler) IP(num int, ts time.Time, pkt []byte) {
	if a.Stats.FirstTime.IsZero() {
		a.Stats.FirstTime = ts
	}
	if ts.After(a.Stats.LastTime) {
		a.Stats.LastTime = ts
	}
	var (
		src, dst netip.Addr
		seg      []byte
	)
	switch {
	case len(pkt) > 0 && pkt[0]>>4 == 4:
		ip, err := wire.ParseIPv4(pkt)
		if err != nil {
			a.undecodable(num)
			return
		}
		if ip.IsFragment() {
			a.Stats.Fragments++
			return
		}
		if ip.Protocol() != wire.ProtoTCP {
			a.Stats.NonTCP++
			return
		}
		src, dst, seg = ip.Src(), ip.Dst(), ip.Payload()
	case len(pkt) > 0 && pkt[0]>>4 == 6:
		ip, err := wire.ParseIPv6(pkt)
		if err != nil {
			a.undecodable(num)
			return
		}
		proto, payload, err := ip.UpperLayer()
		if errors.Is(err, wire.ErrFragment) {
			a.Stats.Fragments++
			return
		}
		if err != nil {
			a.undecodable(num)
			return
		}
		if proto != wire.ProtoTCP {
			a.Stats.NonTCP++
			return
		}
		src, dst, seg = ip.Src(), ip.Dst(), payload
	default:
		a.Stats.NonIP++
		return
	}
	t, err := wire.ParseTCP(seg)
	if err != nil {
		a.undecodable(num)
		return
	}
	a.segment(num, ts, netip.AddrPortFrom(src, t.SrcPort()), netip.AddrPortFrom(dst, t.DstPort()), t)
	if ts.Sub(a.lastExpire) >= time.Second || ts.Before(a.lastExpire) {
		a.expire(ts)
	}
}

func (a *Assembler) isServerPort(p uint16) bool {
	for _, q := range a.cfg.ServerPorts {
		if p == q {
			return true
		}
	}
	return false
}

// guessRoles picks (client, server) for a connection seen without its
// handshake.
func (a *Assembler) guessRoles(src, dst netip.AddrPort) (client, server netip.AddrPort) {
	sp, dp := src.Port(), dst.Port()
	switch {
	case a.isServerPort(dp) && !a.isServerPort(sp):
		return src, dst
	case a.isServerPort(sp) && !a.isServerPort(dp):
		return dst, src
	case dp < 1024 && sp >= 1024:
		return src, dst
	case sp < 1024 && dp >= 1024:
		return dst, src
	case sp >= 32768 && dp < 32768:
		return src, dst
	case dp >= 32768 && sp < 32768:
		return dst, src
	case dp <= sp:
		return src, dst
	}
	return dst, src
}

func (a *Assembler) segment(num int, ts time.Time, src, dst netip.AddrPort, t wire.TCP) {
	flags := t.Flags()
	syn := flags&wire.TCPFlagSYN != 0
	ack := flags&wire.TCPFlagACK != 0
	rst := flags&wire.TCPFlagRST != 0
	fin := flags&wire.TCPFlagFIN != 0
	payload := t.Payload()
	seq := t.Seq()
	key := makeKey(src, dst)
	c := a.conns[key]
	if c != nil && c.s == nil {
		// A finished (or filtered) connection: a SYN with a new ISN from
		// the client side starts a new one; anything else is late.
		if syn && !ack && !(c.haveISN && seq == c.clientISN) {
			a.drop(c)
			c = nil
		} else if c.filtered {
			c.last = ts
			a.tomb.remove(c)
			a.tomb.pushBack(c)
			return
		} else {
			a.Stats.Stray++
			return
		}
	}
	if c != nil && syn && !ack && src == c.client && c.haveISN && seq != c.clientISN {
		a.finish(c, num)
		a.drop(c)
		c = nil
	}
	if c == nil {
		var client, server netip.AddrPort
		switch {
		case syn && !ack:
			client, server = src, dst
		case syn && ack:
			client, server = dst, src
		case rst || len(payload) == 0:
			a.Stats.Stray++
			return
		default:
			client, server = a.guessRoles(src, dst)
		}
		a.nextID++
		c = &conn{key: key, client: client, last: ts}
		a.conns[key] = c
		if a.cfg.Filter != nil && !a.cfg.Filter(client, server) {
			a.Stats.Filtered++
			c.filtered = true
			c.haveISN, c.clientISN = syn && !ack, seq
			c.inTomb = true
			a.tomb.pushBack(c)
			return
		}
		a.Stats.Sessions++
		if !syn {
			a.Stats.Midstream++
		}
		c.s = &Session{ID: a.nextID, Client: client, Server: server, Start: ts, FirstPacket: num, Handshake: syn, Midstream: !syn}
		a.active.pushBack(c)
	} else {
		c.last = ts
		a.active.remove(c)
		a.active.pushBack(c)
	}
	s := c.s
	s.Packets++
	s.End = ts
	s.LastPacket = num
	d := ClientToServer
	if src != c.client {
		d = ServerToClient
	}
	h := &c.h[d]
	if syn {
		if d == ClientToServer {
			c.clientISN, c.haveISN = seq, true
		}
		if !h.started {
			h.started, h.next = true, seq+1
		}
		seq++
		if ack && !c.h[1-d].started {
			// SYN-ACK without the SYN: its ACK tells where the client starts.
			c.h[1-d].started, c.h[1-d].next = true, t.Ack()
		}
		if d == ServerToClient {
			s.Handshake = true
		}
	}
	if ack && c.h[1-d].started {
		a.resolveAck(c, 1-d, t.Ack(), num, ts)
	}
	if len(payload) > 0 {
		a.data(c, d, seq, payload, num, ts)
	}
	if fin && !h.fin {
		h.fin, h.finSeq = true, seq+uint32(len(payload))
		if !h.started {
			h.started, h.next = true, h.finSeq
		}
	}
	if h.fin && !h.finDone && h.next == h.finSeq {
		h.finDone = true
	}
	if fin {
		if d == ClientToServer {
			s.ClientFIN = true
		} else {
			s.ServerFIN = true
		}
	}
	if rst {
		if d == ClientToServer {
			s.ClientRST = true
		} else {
			s.ServerRST = true
		}
		a.finish(c, num)
		return
	}
	if c.h[0].finDone && c.h[1].finDone {
		a.finish(c, num)
	}
}

// resolveAck handles an acknowledgement of direction d's bytes up to ackv:
// the peer received them, so bytes the capture lacks below ackv are a gap.
func (a *Assembler) resolveAck(c *conn, d Dir, ackv uint32, num int, ts time.Time) {
	h := &c.h[d]
	end := ackv
	if h.fin && int32(ackv-h.finSeq) > 0 {
		end = h.finSeq
	}
	diff := int32(end - h.next)
	if diff <= 0 || diff > 1<<30 {
		return
	}
	for int32(end-h.next) > 0 {
		holeEnd := end
		if len(h.ooo) > 0 && int32(h.ooo[0].seq-end) < 0 {
			holeEnd = h.ooo[0].seq
		}
		if n := int32(holeEnd - h.next); n > 0 {
			a.gap(c, d, int64(n), num)
			h.next = holeEnd
		}
		a.drain(c, d, ts)
	}
	if h.fin && h.next == h.finSeq {
		h.finDone = true
	}
}

func (a *Assembler) data(c *conn, d Dir, seq uint32, payload []byte, num int, ts time.Time) {
	h := &c.h[d]
	s := c.s
	if !h.started {
		h.started, h.next = true, seq
	}
	end := seq + uint32(len(payload))
	if int32(end-h.next) <= 0 {
		s.Retransmitted++
		a.Stats.Retransmits++
		return
	}
	if rel := int32(seq - h.next); rel > 0 {
		if rel > 1<<30 {
			a.Stats.Stray++
			return
		}
		// Ahead of a hole: hold a copy, sorted by sequence number.
		i := len(h.ooo)
		for i > 0 && int32(h.ooo[i-1].seq-seq) > 0 {
			i--
		}
		if i > 0 && h.ooo[i-1].seq == seq && len(h.ooo[i-1].data) >= len(payload) {
			s.Retransmitted++
			a.Stats.Retransmits++
			return
		}
		s.OutOfOrder++
		a.Stats.OutOfOrder++
		h.ooo = append(h.ooo, oooSeg{})
		copy(h.ooo[i+1:], h.ooo[i:])
		h.ooo[i] = oooSeg{seq: seq, data: append([]byte(nil), payload...)}
		h.oooLen += len(payload)
		for h.oooLen > a.cfg.MaxOutOfOrder && len(h.ooo) > 0 {
			if n := int32(h.ooo[0].seq - h.next); n > 0 {
				a.gap(c, d, int64(n), num)
				h.next = h.ooo[0].seq
			}
			a.drain(c, d, ts)
		}
		return
	} else if rel < 0 {
		payload = payload[-rel:]
		s.Retransmitted++
		a.Stats.Retransmits++
	}
	a.deliver(c, d, payload, ts)
	h.next = end
	a.drain(c, d, ts)
}

// drain delivers held segments that the in-order stream has reached.
func (a *Assembler) drain(c *conn, d Dir, ts time.Time) {
	h := &c.h[d]
	k := 0
	for k < len(h.ooo) {
		sg := h.ooo[k]
		if int32(sg.seq-h.next) > 0 {
			break
		}
		k++
		h.oooLen -= len(sg.data)
		end := sg.seq + uint32(len(sg.data))
		if int32(end-h.next) <= 0 {
			continue
		}
		a.deliver(c, d, sg.data[h.next-sg.seq:], ts)
		h.next = end
	}
	if k > 0 {
		n := copy(h.ooo, h.ooo[k:])
		clear(h.ooo[n:])
		h.ooo = h.ooo[:n]
	}
}

func (a *Assembler) gap(c *conn, d Dir, n int64, num int) {
	s := c.s
	off := len(s.ClientData)
	if d == ServerToClient {
		off = len(s.ServerData)
	}
	s.Gaps = append(s.Gaps, Gap{Dir: d, Offset: off, Len: n, Packet: num})
	a.Stats.Gaps++
	a.Stats.GapBytes += n
}

// deliver appends in-order bytes to a direction's stream and keeps the
// exchange list: client bytes after a response start a new exchange.
func (a *Assembler) deliver(c *conn, d Dir, b []byte, ts time.Time) {
	s := c.s
	if c.stored+len(b) > a.cfg.MaxSessionBytes {
		s.Truncated = true
		b = b[:a.cfg.MaxSessionBytes-c.stored]
	}
	if len(b) == 0 {
		return
	}
	c.stored += len(b)
	n := len(s.Exchanges)
	if d == ClientToServer {
		if n == 0 || s.Exchanges[n-1].RespLen > 0 {
			s.Exchanges = append(s.Exchanges, Exchange{ReqOff: len(s.ClientData), ReqStart: ts, RespOff: len(s.ServerData)})
			n++
		}
		e := &s.Exchanges[n-1]
		e.ReqLen += len(b)
		e.ReqEnd = ts
		s.ClientData = append(s.ClientData, b...)
		return
	}
	if n == 0 {
		s.Exchanges = append(s.Exchanges, Exchange{ReqOff: len(s.ClientData), ReqStart: ts, ReqEnd: ts, RespOff: len(s.ServerData)})
		n++
	}
	e := &s.Exchanges[n-1]
	if e.RespLen == 0 {
		e.RespStart = ts
	}
	e.RespLen += len(b)
	e.RespEnd = ts
	s.ServerData = append(s.ServerData, b...)
}

// finish declares what is still missing, hands the session out and keeps a
// tombstone of the 4-tuple.
func (a *Assembler) finish(c *conn, num int) {
	if c.s == nil {
		return
	}
	for d := ClientToServer; d <= ServerToClient; d++ {
		h := &c.h[d]
		for len(h.ooo) > 0 {
			if n := int32(h.ooo[0].seq - h.next); n > 0 {
				a.gap(c, d, int64(n), num)
				h.next = h.ooo[0].seq
			}
			a.drain(c, d, c.s.End)
		}
		if h.fin && int32(h.finSeq-h.next) > 0 {
			a.gap(c, d, int64(int32(h.finSeq-h.next)), num)
			h.next = h.finSeq
		}
		h.ooo = nil
	}
	s := c.s
	c.s = nil
	a.active.remove(c)
	c.inTomb = true
	a.tomb.pushBack(c)
	if a.emit != nil {
		a.emit(s)
	}
}

func (a *Assembler) drop(c *conn) {
	if c.inTomb {
		a.tomb.remove(c)
	} else {
		a.active.remove(c)
	}
	delete(a.conns, c.key)
}

// expire ends connections idle longer than IdleTimeout and forgets
// tombstones older than tombstoneTTL, as of capture time now.
func (a *Assembler) expire(now time.Time) {
	a.lastExpire = now
	for c := a.tomb.head; c != nil && now.Sub(c.last) > tombstoneTTL; c = a.tomb.head {
		a.drop(c)
	}
	for c := a.active.head; c != nil && now.Sub(c.last) > a.cfg.IdleTimeout; c = a.active.head {
		a.finish(c, 0)
	}
}

// Flush ends every connection still open (end of capture), in the order
// of their first packet.
func (a *Assembler) Flush() {
	var open []*conn
	for c := a.active.head; c != nil; c = c.next {
		open = append(open, c)
	}
	// Emit in session order for a deterministic report.
	sort.Slice(open, func(i, j int) bool { return open[i].s.ID < open[j].s.ID })
	for _, c := range open {
		a.finish(c, 0)
	}
	for c := a.tomb.head; c != nil; c = a.tomb.head {
		a.drop(c)
	}
}
