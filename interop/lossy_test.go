package interop

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
)

// lossyReads drops packets read from the link with probability p (seeded),
// impairing the kernel-to-ustack direction; link.Impair impairs writes.
type lossyReads struct {
	link.Endpoint
	mu      sync.Mutex
	rng     *rand.Rand
	p       float64
	dropped int
}

func (l *lossyReads) drop() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rng.Float64() < l.p {
		l.dropped++
		return true
	}
	return false
}

func (l *lossyReads) ReadPacket(buf []byte) (int, error) {
	for {
		n, err := l.Endpoint.ReadPacket(buf)
		if err != nil || !l.drop() {
			return n, err
		}
	}
}

// TestLossyTransfersWithKernel moves data both ways between ustack and the
// kernel with 1% loss, 1% reordering (5 ms jitter) and 0.5% duplication on
// ustack's egress and 1% loss on its ingress; SHA-256 must match and both
// sides must recover without stalling.
func TestLossyTransfersWithKernel(t *testing.T) {
	n := NewNetns(t, NetnsConfig{})
	requireTool(t, "python3")
	const size = 8 << 20
	in := &lossyReads{Endpoint: n.TUN, rng: rand.New(rand.NewPCG(1, 2)), p: 0.01}
	ep := link.Impair(in, link.Impairment{Loss: 0.01, Reorder: 0.01, Jitter: 5 * time.Millisecond, Duplicate: 0.005, Seed: 3})
	s := n.NewStack(t, ep, ustack.Config{})
	serveHTTP(t, s, ":80", nil)
	startSink(t, n)

	// kernel curl <- ustack
	start := time.Now()
	out := n.Exec(t, "sh", "-c", fmt.Sprintf("curl -sS --max-time 120 http://%s/bytes?n=%d\\&seed=4 | sha256sum", urlHost(n.Stack4.Addr(), 80), size))
	want, _ := sha256Of(payload(size, 4))
	if len(out) < 64 || out[:64] != want {
		t.Errorf("curl download through loss: sha %q, want %s", out, want)
	}
	t.Logf("kernel <- ustack, lossy: %d MiB in %v", size>>20, time.Since(start).Round(time.Millisecond))

	// ustack -> kernel sink
	var c net.Conn
	var err error
	waitUntil(t, "kernel sink", 20*time.Second, func() bool {
		c, err = s.Dial("tcp", urlHost(n.Kernel6.Addr(), 9000))
		return err == nil
	})
	start = time.Now()
	c.SetDeadline(time.Now().Add(120 * time.Second))
	if _, err := io.Copy(c, payload(size, 6)); err != nil {
		t.Fatal(err)
	}
	c.(*ustack.TCPConn).CloseWrite()
	reply, err := io.ReadAll(c)
	c.Close()
	want, _ = sha256Of(payload(size, 6))
	if err != nil || string(reply) != fmt.Sprintf("%s %d\n", want, size) {
		t.Errorf("kernel sink through loss: %q %v", reply, err)
	}
	t.Logf("ustack -> kernel, lossy: %d MiB in %v", size>>20, time.Since(start).Round(time.Millisecond))
	st := s.Stats()
	t.Logf("ingress drops %d; TCP RetransSegs %d TCPFastRetrans %d TCPTimeouts %d TCPSACKRecovery %d TCPLossProbes %d",
		in.dropped, st.TCP.RetransSegs, st.TCP.TCPFastRetrans, st.TCP.TCPTimeouts, st.TCP.TCPSACKRecovery, st.TCP.TCPLossProbes)
	if st.TCP.RetransSegs == 0 {
		t.Error("no retransmissions through a lossy link: the impairment did not apply")
	}
}
