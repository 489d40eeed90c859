package tcp

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// fuzzConn returns a connection driven into one of several states, with
// some data in flight or buffered where the state allows it.
func fuzzConn(t testing.TB, kind byte) (*Conn, *vnet) {
	cfg := DefaultConfig()
	if kind&0x80 != 0 {
		cfg.SACK = false
		cfg.Timestamps = 0
	}
	if kind&0x40 != 0 {
		cfg.WindowScaling = false
	}
	kind &= 0x3f
	v := newPair(t, &cfg, &cfg, 5*time.Millisecond)
	v.noTrace = true
	switch kind % 12 {
	case 0: // SYN-SENT
		return v.c[0], v
	case 1: // SYN-RECEIVED
		v.step()
		return v.c[1], v
	}
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a, b := v.c[0], v.c[1]
	a.Send(make([]byte, 5000))
	b.Send(make([]byte, 3000))
	v.flush(0)
	v.flush(1)
	switch kind % 12 {
	case 2: // ESTABLISHED with data in flight
		return a, v
	case 3: // ESTABLISHED with data received
		v.advance(v.now.Sub(t0) + 20*time.Millisecond)
		return a, v
	case 4: // FIN-WAIT-1
		a.CloseWrite()
		v.flush(0)
		return a, v
	case 5, 6: // FIN-WAIT-2 / CLOSE-WAIT
		a.CloseWrite()
		v.flush(0)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		if kind%12 == 5 {
			return a, v
		}
		return b, v
	case 7: // LAST-ACK
		a.CloseWrite()
		v.flush(0)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		b.CloseWrite()
		return b, v
	case 8: // CLOSING
		a.CloseWrite()
		b.CloseWrite()
		v.flush(0)
		v.flush(1)
		v.drop = func(int, *Segment) bool { return true }
		v.advance(v.now.Sub(t0) + 5*time.Millisecond)
		return a, v
	case 9: // TIME-WAIT
		a.CloseWrite()
		v.flush(0)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		b.CloseWrite()
		v.flush(1)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		return a, v
	case 10: // zero window
		return a, v
	default: // orphaned
		a.Close()
		return a, v
	}
}

func checkInvariants(t testing.TB, c *Conn, where string) {
	fail := func(f string, args ...any) {
		t.Fatalf("%s: state %v: %s", where, c.state, fmt.Sprintf(f, args...))
	}
	if seqGT(c.sndUna, c.sndNxt) {
		fail("SND.UNA %d > SND.NXT %d", c.sndUna, c.sndNxt)
	}
	if c.packetsOut != len(c.rtxQ()) {
		fail("packetsOut %d != queue %d", c.packetsOut, len(c.rtxQ()))
	}
	if c.sackedOut < 0 || c.lostOut < 0 || c.retransOut < 0 || c.retransOut > c.lostOut || c.sackedOut+c.lostOut > c.packetsOut {
		fail("scoreboard sacked %d lost %d retrans %d out %d", c.sackedOut, c.lostOut, c.retransOut, c.packetsOut)
	}
	if c.Readable() > c.rcvBufCap+(1<<c.rcvWScale) || c.oooBytes > c.rcvBufCap || c.oooBytes < 0 {
		fail("receive buffer %d ooo %d cap %d", c.Readable(), c.oooBytes, c.rcvBufCap)
	}
	if c.sndQueued() > c.sndBufLimit || c.sndQueued() < 0 {
		fail("send buffer %d limit %d", c.sndQueued(), c.sndBufLimit)
	}
	q := c.rtxQ()
	for i := range q {
		if seqLT(q[i].seq, c.sndUna) || seqGT(q[i].end, c.sndNxt) || !seqLT(q[i].seq, q[i].end) {
			fail("rtx seg [%d,%d) outside [%d,%d)", q[i].seq, q[i].end, c.sndUna, c.sndNxt)
		}
		if i > 0 && q[i].seq != q[i-1].end {
			fail("rtx queue gap")
		}
	}
	if seqLT(c.sbufSeq, c.sndUna) && c.sndQueued() > 0 && c.state != SynSent && c.state != SynReceived {
		fail("send buffer starts at %d before SND.UNA %d", c.sbufSeq, c.sndUna)
	}
	for i := 1; i < len(c.ooo); i++ {
		if seqLT(c.ooo[i].seq, c.ooo[i-1].end()) {
			fail("ooo overlap")
		}
	}
	if len(c.ooo) > 0 && seqLEQ(c.ooo[0].seq, c.rcvNxt) {
		fail("ooo block at %d not beyond RCV.NXT %d", c.ooo[0].seq, c.rcvNxt)
	}
	if c.packetsOut > 0 && c.rtoAt.IsZero() && c.state != Closed && c.state != TimeWait {
		fail("%d packets in flight without a retransmission timer", c.packetsOut)
	}
	if c.state == Closed && !c.Deadline().IsZero() {
		fail("closed with a timer")
	}
}

// FuzzInput feeds fuzzed segments and calls to a connection in various
// states and checks that it never panics and its invariants hold.
func FuzzInput(f *testing.F) {
	for k := 0; k < 12; k++ {
		f.Add([]byte{byte(k), 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 10})
		f.Add([]byte{byte(k) | 0x80, 1, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	}
	f.Add([]byte{2, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 0, 0x02, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) { runFuzzInput(t, data) })
}

func runFuzzInput(t testing.TB, data []byte) {
	{
		if len(data) < 1 {
			return
		}
		c, v := fuzzConn(t, data[0])
		data = data[1:]
		now := v.now
		emit := func(s *Segment) {
			if len(s.Payload) > 0 && len(s.Payload) > max(c.sndMSS, 1460) {
				t.Fatalf("segment too large: %d", len(s.Payload))
			}
		}
		buf := make([]byte, 4096)
		for step := 0; len(data) >= 14 && step < 64; step++ {
			op := data[0]
			b := data[1:14]
			data = data[14:]
			switch op % 8 {
			case 0, 1, 2, 3: // a segment, relative to the connection's state
				seg := Segment{
					Seq:    c.rcvNxt + uint32(int32(int16(binary.BigEndian.Uint16(b[2:])))),
					Ack:    c.sndUna + uint32(int32(int16(binary.BigEndian.Uint16(b[4:])))),
					Flags:  b[1],
					Window: binary.BigEndian.Uint16(b[6:]),
				}
				if op&0x10 != 0 {
					seg.Seq = binary.BigEndian.Uint32(b[2:])
				}
				if op&0x20 != 0 {
					seg.Options.HasTS = true
					seg.Options.TSVal = c.tsRecent + uint32(int32(int8(b[8])))
					seg.Options.TSEcr = c.tsVal(now) - uint32(b[9])
				}
				if op&0x40 != 0 {
					n := int(b[10] % 5)
					seg.Options.NumSACK = n
					for i := 0; i < n && i < 4; i++ {
						l := c.sndUna + uint32(int32(int8(b[11+i%2])))*100 + uint32(i)*1448
						seg.Options.SACK[i] = wire.SACKBlock{Left: l, Right: l + uint32(b[12])*16}
					}
				}
				if op&0x80 != 0 {
					seg.Options.HasMSS = true
					seg.Options.MSS = binary.BigEndian.Uint16(b[8:])
					seg.Options.HasWScale = true
					seg.Options.WScale = b[10]
				}
				seg.Payload = make([]byte, int(b[11])*8)
				c.Input(&seg, now)
			case 4: // time passes, timers run
				now = now.Add(time.Duration(binary.BigEndian.Uint16(b)) * time.Millisecond)
				for i := 0; i < 100; i++ {
					d := c.Deadline()
					if d.IsZero() || d.After(now) {
						break
					}
					c.Timeout(d)
					c.Output(d, emit)
					if nd := c.Deadline(); !nd.IsZero() && !nd.After(d) {
						t.Fatalf("deadline %v does not advance past %v (state %v)", nd, d, c.state)
					}
				}
				c.Timeout(now)
			case 5:
				c.Send(make([]byte, binary.BigEndian.Uint16(b)))
			case 6:
				c.Recv(buf[:int(b[0])*16])
			case 7:
				switch b[0] % 8 {
				case 0:
					c.CloseWrite()
				case 1:
					c.Close()
				case 2:
					c.Abort()
				case 3:
					c.SetKeepAlive(b[1]&1 == 0)
				case 4:
					c.SetNoDelay(b[1]&1 == 0)
				case 5:
					c.SetMTU(300 + int(b[1])*8)
				default:
					c.Info()
				}
			}
			c.Output(now, emit)
			checkInvariants(t, c, fmt.Sprintf("step %d op %d", step, op%8))
		}

	}
}
