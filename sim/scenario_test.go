package sim

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp"
)

// testIPv6 makes runScenario run scenarios over IPv6 (TestScenariosIPv6).
var testIPv6 bool

func runScenario(t *testing.T, name string, sysctls ...string) *Result {
	t.Helper()
	r, err := RunScenario(name, Options{Seed: 1, Sysctls: sysctls, IPv6: testIPv6})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sends returns the times of the segments host sent whose flags are exactly f.
func sends(r *Result, host, flags string) []time.Duration {
	var out []time.Duration
	for _, e := range r.Sim.Trace().Events {
		if e.Host == host && e.Kind == KindSend && e.Flags == flags {
			out = append(out, e.T)
		}
	}
	return out
}

func secs(ds ...float64) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d * float64(time.Second))
	}
	return out
}

func offsets(ts []time.Duration, base time.Duration) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t - base
	}
	return out
}

func dump(r *Result) string {
	var b bytes.Buffer
	r.Sim.Trace().WriteText(&b, nil)
	return b.String()
}

func stateSeq(c *Conn) []string {
	var out []string
	for _, e := range c.h.sim.trace.Events {
		if e.Kind == KindState && e.Host == c.h.Name && e.Conn == c.label() {
			out = append(out, e.To)
		}
	}
	return out
}

func firstConn(t *testing.T, h *Host) *Conn {
	t.Helper()
	if len(h.all) == 0 {
		t.Fatalf("host %s has no connection", h.Name)
	}
	return h.all[0]
}

// stateAt returns when c entered state st (ok false if it never did).
func stateAt(c *Conn, st tcp.State) (time.Duration, bool) {
	for _, e := range c.h.sim.trace.Events {
		if e.Kind == KindState && e.Host == c.h.Name && e.Conn == c.label() && e.To == st.String() {
			return e.T, true
		}
	}
	return 0, false
}

func TestSynTimeout(t *testing.T) {
	r := runScenario(t, "syn-timeout")
	a := firstConn(t, r.Env.A)
	if got, want := sends(r, "A", "S"), secs(0, 1, 3, 7, 15, 31, 63); !slices.Equal(got, want) {
		t.Errorf("SYNs sent at %v, want %v\n%s", got, want, dump(r))
	}
	if !errors.Is(a.Err, syscall.ETIMEDOUT) || a.Closed != 127*time.Second || a.State() != tcp.Closed {
		t.Errorf("connect ended with %v at %v in %v, want ETIMEDOUT at 127s in CLOSED", a.Err, a.Closed, a.State())
	}
}

func TestSynTimeoutSysctl(t *testing.T) {
	r := runScenario(t, "syn-timeout", "net.ipv4.tcp_syn_retries=3")
	a := firstConn(t, r.Env.A)
	if got, want := sends(r, "A", "S"), secs(0, 1, 3, 7); !slices.Equal(got, want) {
		t.Errorf("SYNs sent at %v, want %v", got, want)
	}
	if !errors.Is(a.Err, syscall.ETIMEDOUT) || a.Closed != 15*time.Second {
		t.Errorf("connect ended with %v at %v, want ETIMEDOUT at 15s", a.Err, a.Closed)
	}
}

func TestSynAckLoss(t *testing.T) {
	r := runScenario(t, "synack-loss")
	b := firstConn(t, r.Env.B)
	sa := sends(r, "B", "S.")
	if len(sa) == 0 {
		t.Fatalf("B sent no SYN-ACK\n%s", dump(r))
	}
	if got, want := offsets(sa, sa[0]), secs(0, 1, 3, 7, 15, 31); !slices.Equal(got, want) {
		t.Errorf("SYN-ACKs sent at +%v, want +%v\n%s", got, want, dump(r))
	}
	if !b.gone || b.Closed-sa[0] != 63*time.Second {
		t.Errorf("half-open connection dropped at %v (gone %v), want 63s after the first SYN-ACK (%v)", b.Closed, b.gone, sa[0]+63*time.Second)
	}
	if n := len(r.Env.B.Conns()); n != 1 {
		t.Errorf("B created %d connections, want 1", n)
	}
}

func TestAckLossKeepalive(t *testing.T) {
	r := runScenario(t, "ack-loss-keepalive")
	a := firstConn(t, r.Env.A)
	if a.Established == 0 {
		t.Fatalf("A never established\n%s", dump(r))
	}
	// Keepalive probes: bare ACKs below SND.NXT.
	var probes []time.Duration
	for _, e := range r.Sim.Trace().Events {
		if e.Host == "A" && e.Kind == KindSend && e.Flags == "." && e.T > 1000*time.Second {
			probes = append(probes, e.T-a.Established)
		}
	}
	var want []time.Duration
	for i := range 9 {
		want = append(want, 7200*time.Second+time.Duration(i)*75*time.Second)
	}
	if !slices.Equal(probes, want) {
		t.Errorf("keepalive probes at established+%v, want +%v", probes, want)
	}
	if !errors.Is(a.Err, syscall.ETIMEDOUT) || a.Closed-a.Established != 7875*time.Second {
		t.Errorf("A ended with %v at established+%v, want ETIMEDOUT at +7875s", a.Err, a.Closed-a.Established)
	}
	// Like Linux, the keepalive timeout resets the connection.
	if rst := r.Sim.Trace().Find(func(e *Event) bool {
		return e.Host == "A" && e.Kind == KindSend && e.T == a.Closed && strings.HasPrefix(e.Flags, "R")
	}); rst == nil {
		t.Errorf("A sent no RST when keepalive gave up")
	}
	b := firstConn(t, r.Env.B)
	if !b.gone || b.Established != 0 {
		t.Errorf("B's half-open connection: gone %v, established at %v; want dropped, never established", b.gone, b.Established)
	}
}

func TestAckLossRetries2(t *testing.T) {
	r := runScenario(t, "ack-loss-retries2")
	a := firstConn(t, r.Env.A)
	var data, rto []time.Duration // every transmission; those an RTO caused
	lastTimer := ""
	for _, e := range r.Sim.Trace().Events {
		if e.Host != "A" {
			continue
		}
		if e.Kind == KindTimer {
			lastTimer = e.Note
		}
		if e.Kind == KindSend && e.Len != nil && *e.Len > 0 {
			data = append(data, e.T)
			if strings.Contains(lastTimer, "retransmission timeout") {
				rto = append(rto, e.T)
			}
			lastTimer = ""
		}
	}
	if len(rto) < 15 {
		t.Fatalf("A retransmitted its data %d times on RTO, want 15 (tcp_retries2)\n%s", len(rto), dump(r))
	}
	// Backoff: each RTO doubles until it reaches RTOMax.
	for i := 2; i < len(rto); i++ {
		g0, g1 := rto[i-1]-rto[i-2], rto[i]-rto[i-1]
		if g1 != min(2*g0, 120*time.Second) {
			t.Errorf("RTO retransmission gaps %v then %v: not doubling up to 120s", g0, g1)
		}
	}
	died := a.Closed - data[0]
	if !errors.Is(a.Err, syscall.ETIMEDOUT) || died < 924600*time.Millisecond || died > 950*time.Second {
		t.Errorf("A ended with %v %v after the first send, want ETIMEDOUT about 924.6s after it", a.Err, died)
	}
	t.Logf("retries2: %d transmissions (%d on RTO), ETIMEDOUT %v after the first", len(data), len(rto), died)
}

func TestFastRetransmit(t *testing.T) {
	r := runScenario(t, "fast-retransmit")
	a, b := firstConn(t, r.Env.A), firstConn(t, r.Env.B)
	ev := r.Sim.Trace().Events
	drop := slices.IndexFunc(ev, func(e Event) bool { return e.Kind == KindDrop && e.Host == "A" })
	if drop < 0 {
		t.Fatalf("nothing dropped\n%s", dump(r))
	}
	lost := *ev[drop].Seq
	rtx := slices.IndexFunc(ev, func(e Event) bool { return e.Kind == KindSend && e.Host == "A" && e.Rtx && *e.Seq == lost })
	if rtx < 0 {
		t.Fatalf("lost segment never retransmitted\n%s", dump(r))
	}
	dups := 0
	for _, e := range ev[drop:rtx] {
		if e.Kind == KindRecv && e.Host == "A" && e.Flags == "." && e.Ack != nil && *e.Ack == lost {
			dups++
		}
	}
	if dups < 3 {
		t.Errorf("A received %d duplicate ACKs for %d before retransmitting, want >= 3", dups, lost)
	}
	if gap := ev[rtx].T - ev[drop].T; gap >= 200*time.Millisecond {
		t.Errorf("retransmission %v after the loss: not fast", gap)
	}
	if r.Env.A.Counters.TCPFastRetrans == 0 {
		t.Error("TCPFastRetrans not counted")
	}
	if b.BytesRead != 30000 || a.Err != nil {
		t.Errorf("B read %d bytes (want 30000), A error %v", b.BytesRead, a.Err)
	}
}

func TestZeroWindow(t *testing.T) {
	r := runScenario(t, "zero-window")
	a, b := firstConn(t, r.Env.A), firstConn(t, r.Env.B)
	ev := r.Sim.Trace().Events
	zero := slices.IndexFunc(ev, func(e Event) bool { return e.Kind == KindSend && e.Host == "B" && e.Win != nil && *e.Win == 0 })
	if zero < 0 {
		t.Fatalf("B never advertised a zero window\n%s", dump(r))
	}
	var probes []time.Duration
	for _, e := range ev[zero:] {
		if e.T >= 30*time.Second {
			break
		}
		if e.Kind == KindSend && e.Host == "A" {
			probes = append(probes, e.T)
		}
	}
	if len(probes) < 3 {
		t.Fatalf("A sent %d probes while the window was closed, want several\n%s", len(probes), dump(r))
	}
	// The probe timer backs off exponentially; like Linux it is re-armed
	// when the probe's answer arrives, so a gap may exceed twice the one
	// before by up to one RTT (20 ms) per step.
	for i := 2; i < len(probes); i++ {
		g0, g1 := probes[i-1]-probes[i-2], probes[i]-probes[i-1]
		if d := g1 - 2*g0; d < -50*ms || d > 50*ms {
			t.Errorf("probe gaps %v then %v: not doubling", g0, g1)
		}
	}
	if len(probes) < 6 {
		t.Errorf("%d probes in 30 s, want at least 6", len(probes))
	}
	// B reading again opens the window at once: the transfer ends soon after.
	eof := slices.IndexFunc(ev, func(e Event) bool { return e.Host == "B" && e.Kind == KindApp && e.Note == "read EOF" })
	if b.BytesRead != 200000 || a.Err != nil || b.Err != nil || eof < 0 || ev[eof].T > 32*time.Second {
		t.Errorf("B read %d bytes (want 200000) by %v (want EOF before 32 s); errors %v %v", b.BytesRead, ev[max(eof, 0)].T, a.Err, b.Err)
	}
}

func TestCloseTimeWait(t *testing.T) {
	r := runScenario(t, "close")
	a, b := firstConn(t, r.Env.A), firstConn(t, r.Env.B)
	if got, want := strings.Join(stateSeq(a), " "), "SYN-SENT ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT CLOSED"; got != want {
		t.Errorf("A went %s, want %s\n%s", got, want, dump(r))
	}
	if got, want := strings.Join(stateSeq(b), " "), "SYN-RECEIVED ESTABLISHED CLOSE-WAIT LAST-ACK CLOSED"; got != want {
		t.Errorf("B went %s, want %s", got, want)
	}
	tw, _ := stateAt(a, tcp.TimeWait)
	if a.Closed-tw != 60*time.Second {
		t.Errorf("TIME-WAIT lasted %v, want 60s", a.Closed-tw)
	}
	if a.Err != nil || b.Err != nil || a.BytesRead != 14 {
		t.Errorf("errors %v %v, A read %d bytes", a.Err, b.Err, a.BytesRead)
	}
}

func TestSimultaneousClose(t *testing.T) {
	r := runScenario(t, "simultaneous-close")
	for _, h := range []*Host{r.Env.A, r.Env.B} {
		c := firstConn(t, h)
		seq := stateSeq(c)
		if len(seq) < 4 || strings.Join(seq[len(seq)-4:], " ") != "FIN-WAIT-1 CLOSING TIME-WAIT CLOSED" {
			t.Errorf("%s went %v, want ... FIN-WAIT-1 CLOSING TIME-WAIT CLOSED\n%s", h.Name, seq, dump(r))
		}
		tw, _ := stateAt(c, tcp.TimeWait)
		if c.Closed-tw != 60*time.Second || c.Err != nil {
			t.Errorf("%s: TIME-WAIT lasted %v, error %v", h.Name, c.Closed-tw, c.Err)
		}
	}
}

// The same seed gives the same trace, byte for byte.
func TestDeterministic(t *testing.T) {
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			var j [2]bytes.Buffer
			var p [2]bytes.Buffer
			for i := range 2 {
				r, err := sc.Run(Options{Seed: 42, Pcap: &p[i]})
				if err != nil {
					t.Fatal(err)
				}
				r.Sim.Trace().WriteJSON(&j[i])
			}
			if !bytes.Equal(j[0].Bytes(), j[1].Bytes()) || !bytes.Equal(p[0].Bytes(), p[1].Bytes()) {
				t.Error("two runs with seed 42 differ")
			}
		})
	}
	d := func(seed uint64) string {
		r, err := Demo(DemoOptions{Seed: seed, Delay: 20 * ms, Loss: 0.02})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		r.Env.Sim.Trace().WriteJSON(&b)
		return b.String()
	}
	if d(5) != d(5) {
		t.Error("demo: two runs with seed 5 differ")
	}
}

// tshark reads every scenario's pcap without complaint, and flags a
// retransmission / duplicate ACK on every frame the trace marks so. All
// scenarios go into one capture (each with its own client port, so its own
// TCP stream) because tshark is slow to start.
func TestPcapTshark(t *testing.T) {
	requireTshark(t)
	var all bytes.Buffer
	type part struct {
		name string
		sent []*Event
	}
	var parts []part
	scs := Scenarios()
	for i := range 2 * len(scs) {
		sc, v6 := scs[i%len(scs)], i >= len(scs)
		var p bytes.Buffer
		r, err := sc.Run(Options{Seed: 1, Pcap: &p, ClientPort: uint16(40000 + 100*i), IPv6: v6})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			all.Write(p.Bytes())
		} else {
			all.Write(p.Bytes()[24:]) // records only, without the file header
		}
		var sent []*Event
		for i := range r.Sim.Trace().Events {
			if e := &r.Sim.Trace().Events[i]; e.Kind == KindSend {
				sent = append(sent, e)
			}
		}
		name := sc.Name
		if v6 {
			name += " (IPv6)"
		}
		parts = append(parts, part{name, sent})
	}
	// The demo over a 5% lossy link, for seeded random losses.
	for seed := uint64(1); seed <= 4; seed++ {
		var p bytes.Buffer
		o := DefaultDemoOptions()
		o.Seed, o.Loss, o.Pcap, o.ClientPort = seed, 0.05, &p, uint16(30000+seed)
		r, err := Demo(o)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(p.Bytes()[24:])
		var sent []*Event
		for i := range r.Env.Sim.Trace().Events {
			if e := &r.Env.Sim.Trace().Events[i]; e.Kind == KindSend {
				sent = append(sent, e)
			}
		}
		parts = append(parts, part{fmt.Sprintf("demo 5%% loss seed %d", seed), sent})
	}
	pkts := tsharkRead(t, all.Bytes())
	checkPcapClean(t, pkts)
	off := 0
	for _, p := range parts {
		if off+len(p.sent) > len(pkts) {
			t.Fatalf("%s: tshark read %d packets, fewer than the traces sent", p.name, len(pkts))
		}
		rtx, dup := 0, 0
		for i, e := range p.sent {
			pk := pkts[off+i]
			if e.Rtx {
				rtx++
				if !pk.Retransmit {
					t.Errorf("%s: frame %s (%s) is a retransmission in the trace, not for tshark", p.name, pk.Frame, e)
				}
			}
			if e.Dup {
				dup++
				if !pk.DupAck {
					t.Errorf("%s: frame %s (%s) is a duplicate ACK in the trace, not for tshark", p.name, pk.Frame, e)
				}
			}
			// And the other way round: the trace misses nothing tshark flags.
			if pk.Retransmit && !e.Rtx {
				t.Errorf("%s: tshark flags frame %s (%s) as a retransmission, the trace does not", p.name, pk.Frame, e)
			}
			if pk.DupAck && !e.Dup {
				t.Errorf("%s: tshark flags frame %s (%s) as a duplicate ACK, the trace does not", p.name, pk.Frame, e)
			}
		}
		off += len(p.sent)
		t.Logf("%s: %d packets, %d retransmissions, %d dup acks", p.name, len(p.sent), rtx, dup)
	}
	if off != len(pkts) {
		t.Errorf("tshark read %d packets, the traces sent %d", len(pkts), off)
	}
}

func TestReorder(t *testing.T) {
	r := runScenario(t, "reorder")
	a, b := firstConn(t, r.Env.A), firstConn(t, r.Env.B)
	var dups []*Event
	for i := range r.Sim.Trace().Events {
		if e := &r.Sim.Trace().Events[i]; e.Host == "B" && e.Kind == KindSend && e.Dup {
			dups = append(dups, e)
		}
	}
	if len(dups) != 2 {
		t.Fatalf("B sent %d duplicate ACKs, want 2 (one per overtaking segment)\n%s", len(dups), dump(r))
	}
	for _, e := range dups {
		if !strings.Contains(e.Opts, "sack ") {
			t.Errorf("duplicate ACK without SACK block: %s", e)
		}
		// Sent the moment the out-of-order segment arrived, not delayed.
		in := r.Sim.Trace().Find(func(x *Event) bool {
			return x.Host == "B" && x.Kind == KindRecv && x.Len != nil && *x.Len > 0 && x.T == e.T
		})
		if in == nil {
			t.Errorf("duplicate ACK at %v not sent on the arrival of a segment", e.T)
		}
	}
	if a.Retransmits != 0 || b.BytesRead != 8000 || a.Err != nil {
		t.Errorf("A retransmitted %d segments (want 0); B read %d bytes (want 8000); A error %v", a.Retransmits, b.BytesRead, a.Err)
	}
}

func TestRefused(t *testing.T) {
	r := runScenario(t, "refused")
	a := firstConn(t, r.Env.A)
	if !errors.Is(a.Err, syscall.ECONNREFUSED) || a.Closed != 20*ms {
		t.Errorf("connect ended with %v at %v, want ECONNREFUSED after one RTT (20 ms)\n%s", a.Err, a.Closed, dump(r))
	}
}

func TestReset(t *testing.T) {
	r := runScenario(t, "reset")
	a, b := firstConn(t, r.Env.A), firstConn(t, r.Env.B)
	if !errors.Is(b.Err, syscall.ECONNRESET) || b.Closed != a.Closed+10*ms || a.Err != nil {
		t.Errorf("B ended with %v at %v, A aborted at %v with %v; want ECONNRESET on B one delay after A's abort\n%s", b.Err, b.Closed, a.Closed, a.Err, dump(r))
	}
}

// TestFastOpen: the whole Fast Open story. The first connection's SYN asks
// for a cookie and carries no data; B grants a cookie; the request follows
// the handshake and the response arrives after two round trips. The second
// connection's SYN carries the cached cookie and the request; B accepts the
// data before the handshake completes (its SYN-ACK acknowledges it, its
// application reads and answers it while still in SYN-RECEIVED) and the
// response arrives after one round trip.
func TestFastOpen(t *testing.T) {
	r := runScenario(t, "fastopen")
	as, bs := r.Env.A.Conns(), r.Env.B.Conns()
	if len(as) != 2 || len(bs) != 2 {
		t.Fatalf("%d connections on A and %d on B, want 2 each\n%s", len(as), len(bs), dump(r))
	}
	find := func(c *Conn, kind string, match func(e *Event) bool) *Event {
		return r.Sim.Trace().Find(func(e *Event) bool {
			return e.Host == c.h.Name && e.Conn == c.label() && e.Kind == kind && (match == nil || match(e))
		})
	}
	syn := func(e *Event) bool { return e.Flags == "S" }
	synAck := func(e *Event) bool { return e.Flags == "S." }
	data := func(e *Event) bool { return e.Len != nil && *e.Len > 0 && !strings.Contains(e.Flags, "S") }
	rtt := 20 * ms
	req := len("GET / HTTP/1.0\r\n\r\n")

	// First connection: cookie request, cookie granted, 2 RTTs.
	s1, sa1 := find(as[0], KindSend, syn), find(bs[0], KindSend, synAck)
	if s1 == nil || sa1 == nil {
		t.Fatalf("first handshake missing\n%s", dump(r))
	}
	if !strings.HasSuffix(s1.Opts, ",FO") || *s1.Len != 0 {
		t.Errorf("first SYN %s: want a Fast Open cookie request and no data", s1)
	}
	_, cookie, ok := strings.Cut(sa1.Opts, "FO ")
	if !ok || len(cookie) != 16 {
		t.Fatalf("first SYN-ACK options %q: want an 8-byte Fast Open cookie", sa1.Opts)
	}
	if *sa1.Ack != *s1.Seq+1 {
		t.Errorf("first SYN-ACK %s acknowledges more than the SYN", sa1)
	}
	if resp := find(as[0], KindRecv, data); resp == nil || resp.T-as[0].Opened != 2*rtt {
		t.Errorf("first response at %v, want 2 RTTs (%v) after the connect at %v", resp, 2*rtt, as[0].Opened)
	}

	// Second connection: cookie and request in the SYN, accepted, 1 RTT.
	s2, sa2 := find(as[1], KindSend, syn), find(bs[1], KindSend, synAck)
	if s2 == nil || sa2 == nil {
		t.Fatalf("second handshake missing\n%s", dump(r))
	}
	if !strings.HasSuffix(s2.Opts, "FO "+cookie) || *s2.Len != req {
		t.Errorf("second SYN %s: want the cached cookie %s and the %d-byte request", s2, cookie, req)
	}
	if strings.Contains(sa2.Opts, "FO") || *sa2.Ack != *s2.Seq+1+uint32(req) {
		t.Errorf("second SYN-ACK %s: want it to acknowledge the SYN data, with no new cookie", sa2)
	}
	read := find(bs[1], KindApp, func(e *Event) bool { return strings.HasPrefix(e.Note, "http request") })
	ack := find(bs[1], KindRecv, func(e *Event) bool { return e.Flags == "." }) // completes B's handshake
	if read == nil || ack == nil || read.T != s2.T+rtt/2 || read.T >= ack.T {
		t.Errorf("B read the request at %v, want it with the SYN (%v), before the handshake completes (%v)", read, s2.T+rtt/2, ack)
	}
	if resp := find(as[1], KindRecv, data); resp == nil || resp.T-as[1].Opened != rtt {
		t.Errorf("second response at %v, want 1 RTT (%v) after the connect at %v", resp, rtt, as[1].Opened)
	}
	if n := r.Sim.Trace().Count(func(e *Event) bool { return e.Host == "A" && e.Kind == KindSend && e.Rtx }); n != 0 {
		t.Errorf("A retransmitted %d segments: the SYN data should not be sent again", n)
	}
	if a, b := r.Env.A.Counters, r.Env.B.Counters; a.TCPFastOpenActive != 1 || b.TCPFastOpenPassive != 1 || b.TCPFastOpenCookieReqd != 1 {
		t.Errorf("TCPFastOpenActive %d, TCPFastOpenPassive %d, TCPFastOpenCookieReqd %d; want 1 each", a.TCPFastOpenActive, b.TCPFastOpenPassive, b.TCPFastOpenCookieReqd)
	}
	for _, c := range as {
		if c.BytesRead != int64(len(HTTPResponse(1000))) || c.Err != nil {
			t.Errorf("%s read %d bytes, error %v", c.label(), c.BytesRead, c.Err)
		}
	}
}

func TestFinTimeout(t *testing.T) {
	r := runScenario(t, "fin-timeout")
	a, b := firstConn(t, r.Env.A), firstConn(t, r.Env.B)
	fw2, ok := stateAt(a, tcp.FinWait2)
	if !ok || a.Closed-fw2 != 60*time.Second || a.Err != nil {
		t.Errorf("A: FIN-WAIT-2 at %v (%v), closed at %v with %v; want CLOSED 60s after FIN-WAIT-2\n%s", fw2, ok, a.Closed, a.Err, dump(r))
	}
	if !errors.Is(b.Err, syscall.ECONNRESET) || b.Closed != 90*time.Second+20*ms {
		t.Errorf("B ended with %v at %v, want ECONNRESET at 90.02s (its late data answered with a RST)", b.Err, b.Closed)
	}
}

func TestCloseUnreadSendsRST(t *testing.T) {
	r := runScenario(t, "close-unread")
	a, b := firstConn(t, r.Env.A), firstConn(t, r.Env.B)
	var flags []string
	for _, e := range r.Sim.Trace().Events {
		if e.Host == "B" && e.Kind == KindSend && e.T >= time.Second {
			flags = append(flags, e.Flags)
		}
	}
	if len(flags) != 1 || !strings.HasPrefix(flags[0], "R") {
		t.Errorf("B sent %v on close with unread data, want a single RST\n%s", flags, dump(r))
	}
	if !errors.Is(a.Err, syscall.ECONNRESET) || b.Err != nil {
		t.Errorf("A ended with %v (want ECONNRESET), B with %v", a.Err, b.Err)
	}
}

func TestReorderDeep(t *testing.T) {
	r := runScenario(t, "reorder-deep")
	a, b := firstConn(t, r.Env.A), firstConn(t, r.Env.B)
	if r.Env.A.Counters.TCPFastRetrans == 0 {
		t.Errorf("no fast retransmission on SACKed duplicate ACKs\n%s", dump(r))
	}
	held := r.Sim.Trace().Find(func(e *Event) bool { return e.Kind == KindHold })
	if held == nil {
		t.Fatalf("no segment held\n%s", dump(r))
	}
	block := fmt.Sprintf("sack %d:%d", held.relSeq, held.relSeq+uint32(*held.Len))
	dsack := r.Sim.Trace().Find(func(e *Event) bool {
		return e.Host == "B" && e.Kind == KindSend && e.Ack != nil && strings.Contains(e.relOpts, block)
	})
	if dsack == nil {
		t.Errorf("B did not report the duplicate held segment with a D-SACK (%s)\n%s", block, dump(r))
	}
	if b.BytesRead != 20000 || a.Err != nil || b.Err != nil {
		t.Errorf("B read %d bytes (want 20000); errors %v %v", b.BytesRead, a.Err, b.Err)
	}
}

// The scenario tests again, over IPv6: the engine's behaviour must not
// depend on the address family.
func TestScenariosIPv6(t *testing.T) {
	testIPv6 = true
	defer func() { testIPv6 = false }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"SynTimeout", TestSynTimeout}, {"SynTimeoutSysctl", TestSynTimeoutSysctl}, {"SynLinear", TestSynLinearTimeouts},
		{"SynAckLoss", TestSynAckLoss},
		{"AckLossKeepalive", TestAckLossKeepalive}, {"AckLossRetries2", TestAckLossRetries2},
		{"FastRetransmit", TestFastRetransmit}, {"ZeroWindow", TestZeroWindow}, {"CloseTimeWait", TestCloseTimeWait},
		{"SimultaneousClose", TestSimultaneousClose}, {"Reorder", TestReorder}, {"ReorderDeep", TestReorderDeep},
		{"Refused", TestRefused}, {"Reset", TestReset}, {"FinTimeout", TestFinTimeout},
		{"CloseUnread", TestCloseUnreadSendsRST}, {"FastOpen", TestFastOpen}, {"UserTimeout", TestUserTimeout},
		{"ZeroWindowDeadPeer", TestZeroWindowDeadPeer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t)
			if r := runScenario(t, "close"); !r.Env.A.Addr.Is6() {
				t.Fatal("not running over IPv6")
			}
		})
	}
}

func TestUserTimeout(t *testing.T) {
	r := runScenario(t, "user-timeout")
	a := firstConn(t, r.Env.A)
	first := r.Sim.Trace().Find(func(e *Event) bool { return e.Host == "A" && e.Kind == KindSend && e.Len != nil && *e.Len > 0 })
	if first == nil {
		t.Fatalf("A sent no data\n%s", dump(r))
	}
	if !errors.Is(a.Err, syscall.ETIMEDOUT) || a.Closed-first.T != 10*time.Second {
		t.Errorf("A ended with %v %v after its first data, want ETIMEDOUT after exactly 10s (TCP_USER_TIMEOUT)", a.Err, a.Closed-first.T)
	}
	// Giving up on retransmissions sends no RST (unlike the keepalive timeout).
	if rst := r.Sim.Trace().Find(func(e *Event) bool {
		return e.Host == "A" && e.Kind == KindSend && e.T == a.Closed && strings.HasPrefix(e.Flags, "R")
	}); rst != nil {
		t.Errorf("A sent %s when giving up", rst)
	}
}

func TestZeroWindowDeadPeer(t *testing.T) {
	r := runScenario(t, "zero-window-dead")
	a := firstConn(t, r.Env.A)
	var probes []time.Duration
	lastTimer := ""
	for _, e := range r.Sim.Trace().Events {
		if e.Host != "A" {
			continue
		}
		if e.Kind == KindTimer {
			lastTimer = e.Note
		}
		if e.Kind == KindSend && strings.Contains(lastTimer, "zero-window probe") {
			probes = append(probes, e.T)
			lastTimer = ""
		}
	}
	if len(probes) != 15 {
		t.Errorf("A sent %d window probes, want 15 (tcp_retries2) before giving up\n%s", len(probes), dump(r))
	}
	for i := 1; i < len(probes); i++ {
		if g := probes[i] - probes[i-1]; g > 120*time.Second+50*ms {
			t.Errorf("probe gap %v exceeds the 120 s RTO maximum", g)
		}
	}
	if n := len(probes); n > 0 && (!errors.Is(a.Err, syscall.ETIMEDOUT) || a.Closed-probes[n-1] != 120*time.Second) {
		t.Errorf("A ended with %v at %v, want ETIMEDOUT one 120 s backoff after the last probe (%v)", a.Err, a.Closed, probes[n-1])
	}
}

// Linux 6.5+'s tcp_syn_linear_timeouts=4: four extra 1 s SYN timeouts before
// the doubling starts; ETIMEDOUT at 131 s.
func TestSynLinearTimeouts(t *testing.T) {
	r := runScenario(t, "syn-timeout", "net.ipv4.tcp_syn_linear_timeouts=4")
	a := firstConn(t, r.Env.A)
	if got, want := sends(r, "A", "S"), secs(0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67); !slices.Equal(got, want) {
		t.Errorf("SYNs sent at %v, want %v", got, want)
	}
	if !errors.Is(a.Err, syscall.ETIMEDOUT) || a.Closed != 131*time.Second {
		t.Errorf("connect ended with %v at %v, want ETIMEDOUT at 131s", a.Err, a.Closed)
	}
}
