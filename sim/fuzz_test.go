package sim

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// FuzzReceive feeds arbitrary TCP segments (with valid checksums, so they
// get past the IP layer) to a host with a listener and an established
// connection: neither the demultiplexer nor the engine may panic, and the
// simulation must stay within its event budget.
func FuzzReceive(f *testing.F) {
	syn := make([]byte, 20)
	binary.BigEndian.PutUint16(syn[0:], 49152)
	binary.BigEndian.PutUint16(syn[2:], 80)
	syn[12] = 5 << 4
	syn[13] = wire.TCPFlagSYN
	f.Add(syn, true)
	ack := append([]byte(nil), syn...)
	ack[13] = wire.TCPFlagACK | wire.TCPFlagPSH
	f.Add(append(ack, "hello"...), false)
	rst := append([]byte(nil), syn...)
	rst[13] = wire.TCPFlagRST
	f.Add(rst, false)
	opts := append([]byte(nil), syn...)
	opts[12] = 8 << 4
	opts = append(opts, 2, 4, 5, 0xb4, 4, 2, 1, 3, 3, 7, 0, 0)
	f.Add(opts, true)
	f.Fuzz(func(t *testing.T, seg []byte, fromA bool) {
		if len(seg) > 2000 {
			return
		}
		e := NewEnv(1, Impairment{Delay: ms}, Impairment{Delay: ms})
		e.Sim.MaxEvents = 100000
		e.B.Listen(80, Echo())
		e.Sim.At(0, func() {
			e.A.Dial(e.Server, Handler{OnOpen: func(c *Conn) { c.Write([]byte("x")) }})
		})
		src, dst, to := e.B.Addr, e.A.Addr, e.A
		if fromA {
			src, dst, to = e.A.Addr, e.B.Addr, e.B
		}
		e.Sim.At(10*ms, func() {
			tcpb := append([]byte(nil), seg...)
			if len(tcpb) >= 18 {
				tcpb[16], tcpb[17] = 0, 0
				sum := wire.Checksum(tcpb, wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(tcpb)))
				binary.BigEndian.PutUint16(tcpb[16:], sum)
			}
			pkt := make([]byte, 20+len(tcpb))
			if _, err := wire.BuildIPv4(pkt, &wire.IPv4Header{TTL: 64, Protocol: wire.ProtoTCP, Src: src, Dst: dst, PayloadLen: len(tcpb)}); err != nil {
				return
			}
			copy(pkt[20:], tcpb)
			to.receive(pkt)
		})
		if err := e.Sim.Run(10 * time.Minute); err != nil {
			t.Fatal(err)
		}
	})
}
