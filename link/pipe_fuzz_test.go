package link

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzPipe drives one direction of a pipe with a random sequence of single
// and batch writes and reads, and checks it against a model drop-tail FIFO.
func FuzzPipe(f *testing.F) {
	f.Add(uint8(4), []byte{0, 10, 1, 20, 2, 3, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 3, 9})
	f.Add(uint8(1), []byte{0, 255, 0, 1, 2, 0, 1, 1})
	f.Fuzz(func(t *testing.T, qlen uint8, ops []byte) {
		const mtu = 200
		a, b := NewPipe(PipeConfig{MTU: mtu, QueueLen: int(qlen%16) + 1})
		defer a.Close()
		limit := int(qlen%16) + 1
		var model [][]byte
		var sent, dropped uint64
		next := 0
		mk := func(size int) []byte {
			p := make([]byte, size)
			for i := range p {
				p[i] = byte(next + i)
			}
			next++
			return p
		}
		write := func(p []byte) {
			if len(p) > mtu {
				return
			}
			if len(model) >= limit {
				dropped++
				return
			}
			sent++
			model = append(model, p)
		}
		for len(ops) >= 2 {
			op, arg := ops[0]%4, int(ops[1])
			ops = ops[2:]
			switch op {
			case 0: // single write
				p := mk(arg)
				err := a.WritePacket(p)
				if (len(p) > mtu) != errors.Is(err, ErrPacketTooBig) {
					t.Fatalf("write %d bytes: %v", len(p), err)
				}
				write(p)
			case 1: // batch write of arg%5 packets
				var ps [][]byte
				for i := range arg % 5 {
					ps = append(ps, mk(arg*(i+1)%250))
				}
				n, err := a.WritePackets(ps)
				for _, p := range ps[:n] {
					write(p)
				}
				if n < len(ps) && (!errors.Is(err, ErrPacketTooBig) || len(ps[n]) <= mtu) {
					t.Fatalf("batch write stopped at %d: %v", n, err)
				}
			case 2: // single read, if anything is queued (reads block)
				if len(model) == 0 {
					continue
				}
				buf := make([]byte, arg)
				n, err := b.ReadPacket(buf)
				want := model[0]
				model = model[1:]
				if !bytes.Equal(buf[:n], want[:min(len(want), arg)]) || (arg < len(want)) != errors.Is(err, ErrShortBuffer) {
					t.Fatalf("read: got %d bytes, err %v; want %d bytes", n, err, len(want))
				}
			case 3: // batch read
				if len(model) == 0 {
					continue
				}
				k := arg%4 + 1
				bufs := make([][]byte, k)
				for i := range bufs {
					bufs[i] = make([]byte, mtu)
				}
				sizes := make([]int, k)
				n, err := b.ReadPackets(bufs, sizes)
				if err != nil || n != min(k, len(model)) {
					t.Fatalf("batch read: n=%d err=%v, model has %d", n, err, len(model))
				}
				for i := range n {
					if !bytes.Equal(bufs[i][:sizes[i]], model[i]) {
						t.Fatalf("batch read packet %d differs", i)
					}
				}
				model = model[n:]
			}
		}
		if st := a.Stats(); st.Sent != sent || st.Dropped != dropped {
			t.Fatalf("stats %+v, model sent %d dropped %d", st, sent, dropped)
		}
	})
}
