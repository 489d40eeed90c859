package ustack

import (
	"errors"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link"
)

// TestSynRetriesVirtualTime dials into a link that drops everything, on
// testing/synctest's virtual clock: with tcp_syn_retries=6 the connect
// fails with ETIMEDOUT 127 s after it started (SYNs at 0, 1, 3, 7, 15, 31,
// 63 s; Linux counts all 7 in OutSegs and 6 in RetransSegs), driven by the stack's single timer goroutine.
func TestSynRetriesVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPairLinks(t, 1500, func(a, b link.Endpoint) (link.Endpoint, link.Endpoint) {
			return link.Impair(a, link.Impairment{Loss: 1, Seed: 1}), b
		})
		start := time.Now()
		_, err := p.A.Dial("tcp", "10.0.0.2:80")
		el := time.Since(start)
		if !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("dial: %v, want ETIMEDOUT", err)
		}
		if el != 127*time.Second {
			t.Errorf("gave up after %v, want 127s", el)
		}
		st := p.A.Stats()
		if st.TCP.TCPSynRetrans != 6 || st.TCP.OutSegs != 7 || st.TCP.RetransSegs != 6 {
			t.Errorf("TCPSynRetrans %d OutSegs %d RetransSegs %d", st.TCP.TCPSynRetrans, st.TCP.OutSegs, st.TCP.RetransSegs)
		}
		p.A.Close()
		p.B.Close()
	})
}
