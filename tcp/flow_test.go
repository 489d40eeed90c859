package tcp

import (
	"bytes"
	"io"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

func TestSimultaneousOpenClose(t *testing.T) {
	v := &vnet{t: t, now: t0, delay: 10 * time.Millisecond}
	v.c[0] = NewActive(cfgDefault(), Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	v.c[1] = NewActive(cfgDefault(), Tuple{Local: addrB, Remote: addrA}, 5000, t0)
	v.flush(0)
	v.flush(1)
	a, b := v.c[0], v.c[1]
	v.run(time.Second, func() bool { return a.State() == Established && b.State() == Established })
	for i := 0; i < 2; i++ {
		if got, want := strings.Join(v.states[i], "|"), "0s SYN-SENT|10ms SYN-RECEIVED|20ms ESTABLISHED"; got != want {
			t.Errorf("%d: states %s want %s\n%s", i, got, want, v.traceStr())
		}
	}
	// Data both ways works.
	a.Send([]byte("ping"))
	b.Send([]byte("pong"))
	v.flush(0)
	v.flush(1)
	v.advance(100 * time.Millisecond)
	buf := make([]byte, 10)
	if n, _ := a.Recv(buf); string(buf[:n]) != "pong" {
		t.Errorf("a got %q", buf[:n])
	}
	if n, _ := b.Recv(buf); string(buf[:n]) != "ping" {
		t.Errorf("b got %q", buf[:n])
	}
	v.advance(time.Second)
	// Simultaneous close.
	a.CloseWrite()
	b.CloseWrite()
	v.flush(0)
	v.flush(1)
	v.run(200*time.Second, func() bool { return a.State() == Closed && b.State() == Closed })
	for i := 0; i < 2; i++ {
		got := strings.Join(v.states[i][3:], "|")
		if want := "1s FIN-WAIT-1|1.01s CLOSING|1.02s TIME-WAIT|1m1.02s CLOSED"; got != want {
			t.Errorf("%d: close states %s want %s\n%s", i, got, want, v.traceStr())
		}
	}
}

func TestZeroWindowProbe(t *testing.T) {
	cfgB := DefaultConfig()
	cfgB.RMem = [3]int{4096, 16384, 16384} // 16 KiB receive buffer
	v := newPair(t, cfgDefault(), &cfgB, 0)
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a, b := v.c[0], v.c[1]
	msg := make([]byte, 100000)
	rand.New(rand.NewSource(1)).Read(msg)
	sent := 0
	push := func() {
		for sent < len(msg) {
			n, _ := a.Send(msg[sent:])
			if n == 0 {
				break
			}
			sent += n
		}
		v.flush(0)
	}
	push()
	v.hook = push
	// B does not read: A fills the window and stops.
	v.advance(100 * time.Millisecond)
	if b.Readable() == 0 || a.Info().SndWnd != 0 {
		t.Fatalf("readable %d sndwnd %d", b.Readable(), a.Info().SndWnd)
	}
	stall := len(v.trace)
	defer func() {
		if t.Failed() {
			t.Logf("%s", v.traceStr())
		}
	}()
	zeroAt := v.now.Sub(t0)
	rto := a.Info().RTO
	// Probes back off while B keeps the window closed.
	v.advance(60 * time.Second)
	probes := v.times(0, func(s *Segment) bool {
		return s.Flags == wire.TCPFlagACK && len(s.Payload) == 0 && s.Seq == a.Info().SndUna-1
	})
	var want []time.Duration
	at := time.Duration(0)
	for k := 0; ; k++ {
		at += BackoffRTO(rto, k, 120*time.Second)
		if at > 60*time.Second {
			break
		}
		want = append(want, at)
	}
	// The window closed at the ACK of the last segment, at time 0 on this
	// zero-delay link.
	if zeroAt != 100*time.Millisecond || !eqDur(probes, want) {
		t.Errorf("probes at %v\nwant %v (rto %v)", probes, want, rto)
	}
	for _, e := range v.trace[stall:] {
		if len(e.seg.Payload) > 0 {
			t.Errorf("data sent into a zero window: %+v", e.seg)
		}
	}
	// B reads everything: the window reopens and the transfer completes.
	var got []byte
	buf := make([]byte, 4096)
	ok := v.run(300*time.Second, func() bool {
		for {
			n, _ := b.Recv(buf)
			if n == 0 {
				break
			}
			got = append(got, buf[:n]...)
		}
		v.flush(1)
		push()
		return len(got) == len(msg)
	})
	if !ok || !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes of %d, equal=%v", len(got), len(msg), bytes.Equal(got, msg))
	}
	if a.Info().TotalRetrans != 0 {
		t.Errorf("retransmissions: %d", a.Info().TotalRetrans)
	}
}

// transfer runs a bidirectional transfer with close over an impaired link.
func transfer(t testing.TB, seed int64, size int, loss, dup, reord float64) {
	transferStats(t, seed, size, loss, dup, reord, nil)
}

type xferTotal struct {
	Counters
	bytes uint64
}

func transferStats(t testing.TB, seed int64, size int, loss, dup, reord float64, total *xferTotal) {
	rng := rand.New(rand.NewSource(seed))
	// Vary the options with the seed: SACK+TS+WS (Linux default), no SACK
	// (NewReno), no timestamps, and small buffers without window scaling
	// (zero windows under loss).
	cfgs := [2]Config{DefaultConfig(), DefaultConfig()}
	for i := range cfgs {
		switch (seed + int64(i)) % 4 {
		case 1:
			cfgs[i].SACK = false
		case 2:
			cfgs[i].Timestamps = 0
		case 3:
			cfgs[i].WindowScaling = false
			cfgs[i].RMem = [3]int{4096, 8192, 8192}
			cfgs[i].WMem = [3]int{4096, 8192, 8192}
		}
	}
	v := newPair(t, &cfgs[0], &cfgs[1], time.Duration(1+rng.Intn(20))*time.Millisecond)
	v.rng = rng
	v.loss, v.dup, v.reord = loss, dup, reord
	v.noTrace = true
	v.check = true
	var msg [2][]byte
	for i := range msg {
		msg[i] = make([]byte, rng.Intn(size))
		rng.Read(msg[i])
	}
	slow := seed%5 == 0
	var sent [2]int
	var got [2][]byte
	var eof [2]bool
	buf := make([]byte, 8192)
	ok := v.run(2000*time.Second, func() bool {
		for i, c := range v.c {
			if c == nil || c.State() == SynSent || c.State() == SynReceived {
				continue
			}
			for sent[i] < len(msg[i]) {
				n, err := c.Send(msg[i][sent[i]:])
				if err != nil {
					t.Fatalf("seed %d: send: %v", seed, err)
				}
				if n == 0 {
					break
				}
				sent[i] += n
				if sent[i] == len(msg[i]) {
					c.CloseWrite()
				}
			}
			if len(msg[i]) == 0 && sent[i] == 0 {
				sent[i] = -1
				c.CloseWrite()
			}
			rbuf := buf
			skip := false
			if slow {
				// A slow reader: small reads, sometimes none (zero
				// windows), but always some when nothing else would
				// happen.
				skip = rng.Intn(3) == 0 && !v.next().IsZero()
				rbuf = buf[:1+rng.Intn(2000)]
			}
			for !eof[i] && !skip {
				n, err := c.Recv(rbuf)
				got[i] = append(got[i], buf[:n]...)
				if err == io.EOF {
					eof[i] = true
				} else if err != nil {
					t.Fatalf("seed %d: recv %d: %v", seed, i, err)
				}
				if n == 0 {
					break
				}
			}
			v.flush(i)
		}
		return eof[0] && eof[1] && v.c[0].State() == Closed && v.c[1].State() == Closed
	})
	if !ok {
		t.Logf("A %+v\nB %+v deadlines %v %v now %v", v.c[0].Info(), v.c[1].Info(), v.c[0].Deadline(), v.c[1].Deadline(), v.now)
		t.Fatalf("seed %d: not done: states %v %v eof %v got %d/%d %d/%d errs %v %v", seed,
			v.c[0].State(), v.c[1].State(), eof, len(got[0]), len(msg[1]), len(got[1]), len(msg[0]), v.c[0].Err(), v.c[1].Err())
	}
	if !bytes.Equal(got[0], msg[1]) || !bytes.Equal(got[1], msg[0]) {
		t.Fatalf("seed %d: data mismatch", seed)
	}
	for i, c := range v.c {
		if c.Err() != nil {
			t.Fatalf("seed %d: endpoint %d error %v", seed, i, c.Err())
		}
		if total != nil {
			k := &v.ctr[i]
			total.InSegs += k.InSegs
			total.OutSegs += k.OutSegs
			total.RetransSegs += k.RetransSegs
			total.TCPTimeouts += k.TCPTimeouts
			total.TCPFastRetrans += k.TCPFastRetrans
			total.TCPSACKRecovery += k.TCPSACKRecovery
			total.TCPRenoRecovery += k.TCPRenoRecovery
			total.TCPLossProbes += k.TCPLossProbes
			total.TCPLostRetransmit += k.TCPLostRetransmit
			total.TCPWinProbe += k.TCPWinProbe
			total.TCPDSACKRecv += k.TCPDSACKRecv
			total.TCPSpuriousRTOs += k.TCPSpuriousRTOs
			total.TCPDSACKUndo += k.TCPDSACKUndo
			total.TCPOFOQueue += k.TCPOFOQueue
			total.TCPChallengeACK += k.TCPChallengeACK
			total.bytes += uint64(len(got[i]))
		}
	}
}

func TestLossyTransferProperty(t *testing.T) {
	seeds := 1000
	if testing.Short() {
		seeds = 100
	}
	var k xferTotal
	for s := 0; s < seeds; s++ {
		transferStats(t, int64(s), 120000, 0.05, 0.02, 0.05, &k)
	}
	t.Logf("%d seeds: %d bytes delivered, %d segments out, %d retransmitted; RTOs %d, fast retransmits %d, SACK recoveries %d, NewReno recoveries %d, loss probes %d, lost retransmissions %d, window probes %d, D-SACKs %d, spurious RTOs %d, D-SACK undos %d, out-of-order queued %d, challenge ACKs %d",
		seeds, k.bytes, k.OutSegs, k.RetransSegs, k.TCPTimeouts, k.TCPFastRetrans, k.TCPSACKRecovery, k.TCPRenoRecovery, k.TCPLossProbes, k.TCPLostRetransmit, k.TCPWinProbe, k.TCPDSACKRecv, k.TCPSpuriousRTOs, k.TCPDSACKUndo, k.TCPOFOQueue, k.TCPChallengeACK)
}

func TestHeavyLossTransfer(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	for s := 0; s < seeds; s++ {
		transfer(t, int64(100000+s), 30000, 0.2, 0.05, 0.2)
	}
}
