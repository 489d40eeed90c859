package tcp

import (
	"fmt"
	"math/rand"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	addrA = netip.MustParseAddrPort("10.0.0.1:40000")
	addrB = netip.MustParseAddrPort("10.0.0.2:80")
)

func flagStr(f uint8) string {
	var b strings.Builder
	for _, x := range []struct {
		f uint8
		s string
	}{{wire.TCPFlagSYN, "S"}, {wire.TCPFlagFIN, "F"}, {wire.TCPFlagRST, "R"}, {wire.TCPFlagPSH, "P"}, {wire.TCPFlagACK, "."}} {
		if f&x.f != 0 {
			b.WriteString(x.s)
		}
	}
	return b.String()
}

// segStr renders a segment with relative sequence numbers.
func segStr(s *Segment, iss, irs uint32) string {
	str := fmt.Sprintf("%s seq=%d", flagStr(s.Flags), s.Seq-iss)
	if s.Flags&wire.TCPFlagACK != 0 {
		str += fmt.Sprintf(" ack=%d", s.Ack-irs)
	}
	if len(s.Payload) > 0 {
		str += fmt.Sprintf(" len=%d", len(s.Payload))
	}
	return str
}

type pkt struct {
	at  time.Time
	to  int
	n   int // tie-break: FIFO
	seg Segment
}

type event struct {
	at   time.Duration // since t0
	from int
	seg  Segment
}

// vnet is a deterministic two-endpoint virtual network.
type vnet struct {
	t     testing.TB
	now   time.Time
	c     [2]*Conn
	q     []pkt
	n     int
	delay time.Duration
	// drop decides the fate of a segment sent by endpoint from; nil keeps all.
	drop    func(from int, s *Segment) bool
	trace   []event
	rng     *rand.Rand
	loss    float64
	dup     float64
	reord   float64
	noTrace bool
	out     [2]int
	lcfg    *Config
	hook    func()
	check   bool
	delayFn func(from int, s *Segment) time.Duration
	rx      []rxEvent
	last    [2]State
	states  [2][]string
	ctr     [2]Counters
}

func copySeg(s *Segment) Segment {
	d := *s
	if len(s.Payload) > 0 {
		d.Payload = append([]byte(nil), s.Payload...)
	} else {
		d.Payload = nil
	}
	return d
}

func (v *vnet) flush(i int) {
	if v.c[i] == nil {
		return
	}
	v.noteState(i)
	defer v.noteState(i)
	c := v.c[i]
	v.c[i].Output(v.now, func(s *Segment) {
		v.out[i]++
		if v.check && len(s.Payload) > 0 {
			limit := c.sndMSS
			if c.tsOK {
				limit += 12
			}
			if n := s.Options.Len() + len(s.Payload); n > limit {
				v.t.Fatalf("segment with %d payload and %d option bytes exceeds MSS %d", len(s.Payload), s.Options.Len(), limit)
			}
		}
		if !v.noTrace {
			v.trace = append(v.trace, event{at: v.now.Sub(t0), from: i, seg: copySeg(s)})
		}
		if v.drop != nil && v.drop(i, s) {
			return
		}
		d := v.delay
		if v.delayFn != nil {
			d = v.delayFn(i, s)
		}
		if v.rng != nil {
			if v.rng.Float64() < v.loss {
				return
			}
			if v.rng.Float64() < v.reord {
				d += time.Duration(v.rng.Int63n(int64(3*v.delay) + 1))
			}
			if v.rng.Float64() < v.dup {
				v.push(i, s, d+time.Millisecond)
			}
		}
		v.push(i, s, d)
	})
}

func (v *vnet) push(from int, s *Segment, d time.Duration) {
	v.n++
	p := pkt{at: v.now.Add(d), to: 1 - from, n: v.n, seg: copySeg(s)}
	k := sort.Search(len(v.q), func(j int) bool {
		return v.q[j].at.After(p.at) || (v.q[j].at.Equal(p.at) && v.q[j].n > p.n)
	})
	v.q = append(v.q, pkt{})
	copy(v.q[k+1:], v.q[k:])
	v.q[k] = p
}

// next returns the time of the next event, zero if none.
func (v *vnet) next() time.Time {
	var t time.Time
	if len(v.q) > 0 {
		t = v.q[0].at
	}
	for _, c := range v.c {
		if c == nil {
			continue
		}
		if d := c.Deadline(); !d.IsZero() && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	return t
}

// step advances to the next event and processes everything due then.
func (v *vnet) step() bool {
	t := v.next()
	if t.IsZero() {
		return false
	}
	if t.After(v.now) {
		v.now = t
	}
	for len(v.q) > 0 && !v.q[0].at.After(v.now) {
		p := v.q[0]
		v.q = v.q[1:]
		if c := v.c[p.to]; c != nil {
			if !v.noTrace {
				v.rx = append(v.rx, rxEvent{to: p.to, seg: p.seg, idx: len(v.trace)})
			}
			c.Input(&p.seg, v.now)
			v.flush(p.to)
		} else if p.to == 1 && v.lcfg != nil && p.seg.Flags&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN {
			c, err := NewPassive(v.lcfg, Tuple{Local: addrB, Remote: addrA}, 5000, &p.seg, v.now)
			if err != nil {
				v.t.Fatalf("NewPassive: %v", err)
			}
			c.SetCounters(&v.ctr[1])
			v.c[1] = c
			v.flush(1)
		}
	}
	for i, c := range v.c {
		if c != nil {
			if d := c.Deadline(); !d.IsZero() && !d.After(v.now) {
				c.Timeout(v.now)
			}
			v.flush(i)
		}
	}
	if v.hook != nil {
		v.hook()
	}
	if v.check {
		for i, c := range v.c {
			if c != nil {
				checkInvariants(v.t, c, fmt.Sprintf("endpoint %d at %v", i, v.now.Sub(t0)))
			}
		}
	}
	return true
}

// run steps until cond holds or the virtual time limit passes.
func (v *vnet) run(limit time.Duration, cond func() bool) bool {
	end := t0.Add(limit)
	for !cond() {
		if !v.step() || v.now.After(end) {
			return cond()
		}
	}
	return true
}

func (v *vnet) traceStr() string {
	var b strings.Builder
	for _, e := range v.trace {
		fmt.Fprintf(&b, "%v %s %s\n", e.at, "AB"[e.from:e.from+1], segStr(&e.seg, 0, 0))
	}
	return b.String()
}

// newPair builds a client (A, active) and returns a vnet; the server (B) is
// created from the first SYN that reaches it.
func newPair(t testing.TB, cfgA, cfgB *Config, delay time.Duration) *vnet {
	v := &vnet{t: t, now: t0, delay: delay}
	v.c[0] = NewActive(cfgA, Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	v.c[0].SetCounters(&v.ctr[0])
	v.flush(0)
	v.listen(cfgB)
	return v
}

// listener: endpoint 1 is created from the first SYN.
func (v *vnet) listen(cfg *Config) {
	v.lcfg = cfg
}

// noteState records state changes of endpoint i with the time.
func (v *vnet) noteState(i int) {
	st := v.c[i].State()
	if len(v.states[i]) == 0 || st != v.last[i] {
		v.last[i] = st
		v.states[i] = append(v.states[i], fmt.Sprintf("%v %v", v.now.Sub(t0), st))
	}
}

// advance processes every event up to d after t0 and leaves the clock at d.
func (v *vnet) advance(d time.Duration) {
	end := t0.Add(d)
	for {
		n := v.next()
		if n.IsZero() || n.After(end) {
			break
		}
		v.step()
	}
	v.now = end
}

type rxEvent struct {
	to  int
	seg Segment
	idx int
}
