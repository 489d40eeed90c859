package tcp

import (
	"testing"
	"time"
)

// bulkTransfer moves total bytes from v.c[0] to v.c[1] (the reader reads
// at once) and returns the receiver's buffer and the sender's buffer limit
// afterwards.
func bulkTransfer(t *testing.T, pressure func() bool, total int) (rcvBuf, sndBuf int) {
	t.Helper()
	v := newPair(t, cfgDefault(), cfgDefault(), 25*time.Millisecond)
	v.noTrace = true
	v.c[0].SetMemoryPressure(pressure)
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a, b := v.c[0], v.c[1]
	b.SetMemoryPressure(pressure)
	data := make([]byte, 1<<20)
	got, sent := 0, 0
	buf := make([]byte, 1<<16)
	v.hook = func() {
		for sent < total {
			n, _ := a.Send(data[:min(len(data), total-sent)])
			if n == 0 {
				break
			}
			sent += n
		}
		v.flush(0)
		for {
			n, _ := b.Recv(buf)
			if n == 0 {
				break
			}
			got += n
		}
		v.flush(1)
	}
	v.hook()
	v.run(120*time.Second, func() bool { return got == total })
	if got != total {
		t.Fatalf("got %d of %d bytes", got, total)
	}
	return b.Info().RcvSpace, a.sndBufLimit
}

// TestMemoryPressureStopsBufferGrowth: under tcp_mem pressure neither the
// receive buffer nor the send buffer grows by autotuning (Linux
// tcp_under_memory_pressure); the transfer still completes within the
// default buffers. Without pressure the same transfer grows both.
func TestMemoryPressureStopsBufferGrowth(t *testing.T) {
	cfg := cfgDefault()
	const total = 4 << 20
	rcv, snd := bulkTransfer(t, nil, total)
	if rcv <= cfg.RMem[1] || snd <= cfg.WMem[1] {
		t.Fatalf("without pressure: receive buffer %d, send buffer %d: autotuning did not grow them", rcv, snd)
	}
	rcvP, sndP := bulkTransfer(t, func() bool { return true }, total)
	if rcvP != cfg.RMem[1] || sndP != cfg.WMem[1] {
		t.Errorf("under pressure: receive buffer %d (want %d), send buffer %d (want %d)", rcvP, cfg.RMem[1], sndP, cfg.WMem[1])
	}
	t.Logf("receive buffer %d -> %d, send buffer %d -> %d without pressure; %d and %d under pressure",
		cfg.RMem[1], rcv, cfg.WMem[1], snd, rcvP, sndP)
}
