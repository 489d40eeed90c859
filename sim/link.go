package sim

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Impairment is link.Impairment: delay, jitter, loss, reorder, duplicate,
// corrupt, rate and queue. Its Seed is ignored: the simulation seeds each
// direction of each link from its own seed.
type Impairment = link.Impairment

// Link joins two hosts. Each direction has its own impairments and its own
// deterministic random stream.
type Link struct {
	AB, BA *direction
}

// Connect joins hosts a and b with a link whose a->b direction applies ab
// and b->a direction applies ba.
func (s *Sim) Connect(a, b *Host, ab, ba Impairment) *Link {
	l := &Link{AB: s.newDirection(a, b, ab), BA: s.newDirection(b, a, ba)}
	a.routes[b.Addr] = l.AB
	b.routes[a.Addr] = l.BA
	s.links = append(s.links, l)
	return l
}

type direction struct {
	sim      *Sim
	from, to *Host
	imp      *link.Impairer
	n        int // packets offered so far
	nData    int // data-carrying segments offered so far
	Stats    DirStats
}

// DirStats counts what happened on one direction of a link.
type DirStats struct {
	Sent, Delivered, RuleDropped, Lost, QueueDropped, Duplicated, Corrupted int
}

func (s *Sim) newDirection(from, to *Host, im Impairment) *direction {
	im.Seed = int64(s.rng.Uint64() >> 1)
	return &direction{sim: s, from: from, to: to, imp: link.NewImpairer(im)}
}

// Packet describes a packet offered to a link, for drop rules.
type Packet struct {
	From, To string // host names
	// N counts the packets offered to this direction of the link (1-based);
	// NData counts those carrying payload (0 if this one does not).
	N, NData int
	Flags    uint8
	Seq, Ack uint32
	Len      int // payload bytes
	Raw      []byte
}

// IsSYN reports a SYN without ACK.
func (p *Packet) IsSYN() bool {
	return p.Flags&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN
}

// IsSYNACK reports a SYN-ACK.
func (p *Packet) IsSYNACK() bool {
	return p.Flags&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN|wire.TCPFlagACK
}

// DropRule drops the packets Match accepts (with From, when not empty,
// restricting it to packets sent by that host). With Hold set it delays
// them by Hold on top of the link's delay instead, which reorders them.
type DropRule struct {
	Name  string
	From  string
	Match func(p *Packet) bool
	Hold  time.Duration
	// Dropped counts the packets the rule dropped (or held).
	Dropped int
}

// HoldNthData delays the n-th payload-carrying segment host from sends by
// d, so the segments sent after it overtake it.
func HoldNthData(from string, n int, d time.Duration) *DropRule {
	return &DropRule{Name: fmt.Sprintf("hold data segment #%d from %s for %v", n, from, d), From: from, Hold: d,
		Match: func(p *Packet) bool { return p.NData == n }}
}

// AddDropRule installs a rule checked for every packet before the link's
// random impairments.
func (s *Sim) AddDropRule(r *DropRule) *DropRule {
	s.rules = append(s.rules, r)
	return r
}

// DropSYNs drops every SYN (without ACK) host from sends.
func DropSYNs(from string) *DropRule {
	return &DropRule{Name: "drop SYNs from " + from, From: from, Match: (*Packet).IsSYN}
}

// DropSYNACKs drops every SYN-ACK host from sends.
func DropSYNACKs(from string) *DropRule {
	return &DropRule{Name: "drop SYN-ACKs from " + from, From: from, Match: (*Packet).IsSYNACK}
}

// DropSYNRetransmissions lets the first SYN host from sends through and
// drops the SYNs after it.
func DropSYNRetransmissions(from string) *DropRule {
	seen := 0
	return &DropRule{Name: "drop SYN retransmissions from " + from, From: from,
		Match: func(p *Packet) bool {
			if !p.IsSYN() {
				return false
			}
			seen++
			return seen > 1
		}}
}

// DropNth drops the n-th packet (1-based) host from sends.
func DropNth(from string, n int) *DropRule {
	return &DropRule{Name: fmt.Sprintf("drop packet #%d from %s", n, from), From: from,
		Match: func(p *Packet) bool { return p.N == n }}
}

// DropNthData drops the n-th payload-carrying segment (1-based) host from sends.
func DropNthData(from string, n int) *DropRule {
	return &DropRule{Name: fmt.Sprintf("drop data segment #%d from %s", n, from), From: from,
		Match: func(p *Packet) bool { return p.NData == n }}
}

// DropAfterHandshake drops every packet host from sends except its SYN or
// SYN-ACK: the handshake's final ACK and everything after it are lost.
func DropAfterHandshake(from string) *DropRule {
	return &DropRule{Name: "drop all packets after the handshake from " + from, From: from,
		Match: func(p *Packet) bool { return p.Flags&wire.TCPFlagSYN == 0 }}
}

// DropAfter drops every packet host from sends at or after virtual time t.
func (s *Sim) DropAfter(from string, t time.Duration) *DropRule {
	return &DropRule{Name: fmt.Sprintf("drop all packets from %s after %v", from, t), From: from,
		Match: func(p *Packet) bool { return s.Elapsed() >= t }}
}

func (d *direction) send(pkt []byte) {
	s := d.sim
	d.n++
	d.Stats.Sent++
	p := Packet{From: d.from.Name, To: d.to.Name, N: d.n, Raw: pkt}
	if _, _, payload, err := ipTCP(pkt); err == nil {
		if t, err := wire.ParseTCP(payload); err == nil {
			p.Flags, p.Seq, p.Ack, p.Len = t.Flags(), t.Seq(), t.Ack(), len(t.Payload())
		}
	}
	if p.Len > 0 {
		d.nData++
		p.NData = d.nData
	}
	var hold time.Duration
	for _, r := range s.rules {
		if r.From != "" && r.From != p.From {
			continue
		}
		if r.Match(&p) {
			r.Dropped++
			if r.Hold > 0 {
				hold = r.Hold
				d.traceDrop(&p, r.Name)
				break
			}
			d.Stats.RuleDropped++
			d.traceDrop(&p, r.Name)
			return
		}
	}
	dec := d.imp.Decide(s.now, len(pkt))
	if hold > 0 {
		for i := range dec.Copies {
			dec.At[i] = dec.At[i].Add(hold)
		}
	}
	if dec.Copies == 0 {
		if dec.QueueDrop {
			d.Stats.QueueDropped++
			d.traceDrop(&p, "queue full")
		} else {
			d.Stats.Lost++
			d.traceDrop(&p, "random loss")
		}
		return
	}
	if dec.Copies > 1 {
		d.Stats.Duplicated++
	}
	if dec.Corrupt {
		d.Stats.Corrupted++
	}
	for _, at := range dec.Deliveries() {
		cp := append([]byte(nil), pkt...)
		dec.Apply(cp)
		to := d.to
		s.schedule(at, func() {
			d.Stats.Delivered++
			to.receive(cp)
		})
	}
}

func (d *direction) traceDrop(p *Packet, why string) {
	kind := KindDrop
	if strings.HasPrefix(why, "hold ") {
		kind = KindHold
	}
	e := Event{T: d.sim.Elapsed(), Host: d.from.Name, Kind: kind, Note: why}
	seq, ack, n := p.Seq, p.Ack, p.Len
	e.Flags = FlagString(p.Flags)
	e.Seq, e.Len = &seq, &n
	e.relSeq = seq
	if p.Flags&wire.TCPFlagACK != 0 {
		e.Ack = &ack
		e.relAck, e.hasAck = ack, true
	}
	// Show relative numbers when the sender's connection is known.
	if src, dst, payload, err := ipTCP(p.Raw); err == nil {
		if t, err := wire.ParseTCP(payload); err == nil {
			tu := tcp.Tuple{Local: netip.AddrPortFrom(src, t.SrcPort()), Remote: netip.AddrPortFrom(dst, t.DstPort())}
			if c := d.from.conns[tu]; c != nil {
				e.Conn = c.label()
				e.port = c.Tuple.Local.Port()
				e.relSeq, e.relAck = seq-c.iss, ack-c.irs
			}
		}
	}
	d.sim.trace.add(e)
}
