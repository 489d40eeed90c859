//go:build linux

package pathemu

import (
	"context"
	"testing"
	"time"
)

// TestNetstackFlow runs a gVisor netstack sender (CUBIC, stack on side A)
// to the discard server in namespace B for 4 s over the clean 100 Mbit/s
// path: the transfer must get going (well past slow start's first
// windows), never beat the bottleneck, and the path must have carried what
// the server read.
func TestNetstackFlow(t *testing.T) {
	needRoot(t)
	cfg := DefaultConfig()
	cfg.StackA = true
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		if nsExists(p.NSB) {
			t.Errorf("namespace %s left behind", p.NSB)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := RunFlows(ctx, p, &NetstackFlow{CC: "cubic", Duration: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	ab, ba := p.Stats()
	t.Logf("%s: %.1f Mbit/s, %d bytes in %.2f s, retransmits %d, srtt %.1f ms; %s; A->B delivered %d (%d B), B->A delivered %d",
		r.Name, r.GoodputBps/1e6, r.Bytes, r.Seconds, r.Retransmits, r.MeanRTTms, r.Note, ab.Delivered, ab.DeliveredB, ba.Delivered)
	if r.Name != "netstack-cubic" {
		t.Errorf("name %q", r.Name)
	}
	// The floor is loose because the emulator shares 2 busy cores (the
	// figure belongs in pathbench's table): a sender that stalls, or never
	// leaves its first windows, stays far below it.
	if r.GoodputBps < 10e6 || r.GoodputBps > 101e6 {
		t.Errorf("goodput %.1f Mbit/s, want 10..101 on a 100 Mbit/s bottleneck", r.GoodputBps/1e6)
	}
	if r.Retransmits < 0 {
		t.Errorf("retransmits unknown")
	}
	if ab.DeliveredB < uint64(r.Bytes) {
		t.Errorf("the path delivered %d bytes A->B but the server read %d", ab.DeliveredB, r.Bytes)
	}
	if r.MeanRTTms < 20 {
		t.Errorf("srtt %.1f ms, want >= 20 (two 10 ms one-way delays)", r.MeanRTTms)
	}
}

// TestNetstackFlowBadCC: an unknown congestion control fails Start with a
// clear error and leaves nothing running.
func TestNetstackFlowBadCC(t *testing.T) {
	needRoot(t)
	cfg := DefaultConfig()
	cfg.StackA = true
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f := &NetstackFlow{CC: "bbr", Duration: time.Second}
	if err := f.Start(context.Background(), p); err == nil {
		t.Fatal("Start with netstack CC bbr did not fail")
	} else {
		t.Logf("Start: %v", err)
	}
}
