package tcp

import (
	"bytes"
	"math/rand"
	"testing"
)

// TestRbufRing checks the receive ring against a plain byte queue under
// random write and read sizes, so wrapping and growth are both exercised.
func TestRbufRing(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var c Conn
	var want bytes.Buffer
	next := byte(0)
	for i := 0; i < 20000; i++ {
		if rng.Intn(2) == 0 {
			d := make([]byte, rng.Intn(700))
			for j := range d {
				d[j] = next
				next++
			}
			c.rbufWrite(d)
			want.Write(d)
		} else {
			p := make([]byte, rng.Intn(900))
			n := c.rbufRead(p)
			w := want.Next(len(p))
			if !bytes.Equal(p[:n], w) {
				t.Fatalf("step %d: read %d bytes %v..., want %d bytes", i, n, p[:min(n, 8)], len(w))
			}
		}
		if c.Readable() != want.Len() {
			t.Fatalf("step %d: Readable %d, want %d", i, c.Readable(), want.Len())
		}
	}
}
