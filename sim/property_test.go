package sim

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp"
)

// Over links that lose, reorder, duplicate and delay packets with jitter,
// every fetch completes and delivers exactly the bytes the server sent, for
// many seeds; the same seed gives the same run.
func TestFetchIntegrityUnderImpairments(t *testing.T) {
	const size = 100000
	want := HTTPResponse(size)
	imps := []Impairment{
		{Delay: 10 * ms, Loss: 0.05},
		{Delay: 10 * ms, Jitter: 8 * ms, Reorder: 0.1},
		{Delay: 5 * ms, Duplicate: 0.1},
		{Delay: 20 * ms, Jitter: 5 * ms, Loss: 0.03, Reorder: 0.05, Duplicate: 0.05},
		{Delay: 2 * ms, RateBps: 20_000_000, QueueLen: 8},
		{Delay: 10 * ms, Loss: 0.2},
		{Delay: 10 * ms, Corrupt: 0.05}, // caught by the checksums, so a loss
	}
	n := 0
	for i, im := range imps {
		for seed := uint64(1); seed <= 20; seed++ {
			n++
			name := fmt.Sprintf("imp%d/seed%d", i, seed)
			e := NewEnv(seed, im, im)
			if seed%2 == 0 {
				e = NewEnv6(seed, im, im)
			}
			e.B.Listen(80, HTTPServer(size))
			f := e.Sim.StartFetch(e.A, 0, e.Server, "GET / HTTP/1.0\r\n\r\n")
			if err := e.Sim.Run(30 * time.Minute); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !f.Completed || !bytes.Equal(f.Response.Bytes(), want) {
				i := 0
				got := f.Response.Bytes()
				for i < len(got) && i < len(want) && got[i] == want[i] {
					i++
				}
				t.Errorf("%s (%+v): completed %v, got %d bytes, want %d; first difference at %d; client error %v",
					name, im, f.Completed, len(got), len(want), i, f.Conn.Err)
				continue
			}
			for _, h := range []*Host{e.A, e.B} {
				for _, c := range h.Conns() {
					if c.Err != nil {
						t.Errorf("%s: %s %s ended with %v", name, h.Name, c.label(), c.Err)
					}
				}
			}
		}
	}
	t.Logf("%d impaired fetches of %d bytes", n, size)
}

// An echo exchange under impairments: the client writes in chunks at
// seeded times, half-closes, reads everything back and closes; both ends
// must end CLOSED without error and the echo must match byte for byte.
func TestEchoIntegrityUnderImpairments(t *testing.T) {
	imps := []Impairment{
		{Delay: 10 * ms, Loss: 0.05, Reorder: 0.05},
		{Delay: 15 * ms, Jitter: 10 * ms, Duplicate: 0.05, Loss: 0.02},
		{Delay: 1 * ms, RateBps: 5_000_000, QueueLen: 5},
	}
	for i, im := range imps {
		for seed := uint64(1); seed <= 15; seed++ {
			name := fmt.Sprintf("imp%d/seed%d", i, seed)
			e := NewEnv(seed, im, im)
			e.B.Listen(80, Echo())
			rng := e.Sim.subRand()
			var sent, got bytes.Buffer
			var client *Conn
			e.Sim.At(0, func() {
				client = e.A.Dial(e.Server, Handler{
					OnData: func(c *Conn, p []byte) {
						got.Write(p)
						if got.Len() == 60000 {
							c.Close()
						}
					},
				})
			})
			at := time.Duration(0)
			for k := range 12 {
				at += time.Duration(rng.IntN(200)) * ms
				chunk := filler(5000)
				chunk[0] = byte(k)
				e.Sim.At(at, func() { client.Write(chunk); sent.Write(chunk) })
			}
			e.Sim.At(at+time.Millisecond, func() { client.CloseWrite() })
			if err := e.Sim.Run(time.Hour); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if sent.Len() != 60000 || !bytes.Equal(got.Bytes(), sent.Bytes()) {
				t.Errorf("%s (%+v): echoed %d bytes of %d, equal %v", name, im, got.Len(), sent.Len(), bytes.Equal(got.Bytes(), sent.Bytes()))
			}
			for _, h := range []*Host{e.A, e.B} {
				for _, c := range h.Conns() {
					if c.Err != nil || c.State() != tcp.Closed || !c.gone {
						t.Errorf("%s: %s %s ended in %v with %v", name, h.Name, c.label(), c.State(), c.Err)
					}
				}
			}
		}
	}
}
