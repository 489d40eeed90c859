package sim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helpExample is the example of ScenarioFileHelp.
func helpExample(t testing.TB) string {
	_, ex, ok := strings.Cut(ScenarioFileHelp, "Example:\n")
	if !ok {
		t.Fatal("ScenarioFileHelp has no example")
	}
	var b strings.Builder
	for _, l := range strings.Split(ex, "\n") {
		b.WriteString(strings.TrimPrefix(l, "  ") + "\n")
	}
	return b.String()
}

// TestScenarioFileExample runs the format help's own example: a loss of
// A's 3rd data segment repaired by one fast retransmission.
func TestScenarioFileExample(t *testing.T) {
	sc, err := ParseScenario("example", strings.NewReader(helpExample(t)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := sc.Run(Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	a, b := firstConn(t, r.Env.A), firstConn(t, r.Env.B)
	if sc.Description != "A sends 20 kB to a discard server; its 3rd data segment is lost" {
		t.Errorf("description %q", sc.Description)
	}
	if b.BytesRead != 20000 || a.Retransmits != 1 || r.Env.A.Counters.TCPTimeouts != 0 || r.Env.A.Counters.TCPFastRetrans != 1 {
		t.Errorf("B read %d bytes, A retransmitted %d segments, %d timeouts, %d fast retransmits; want 20000, 1, 0, 1\n%s",
			b.BytesRead, a.Retransmits, r.Env.A.Counters.TCPTimeouts, r.Env.A.Counters.TCPFastRetrans, dump(r))
	}
	if !a.Done() || !b.Done() || a.Err != nil || b.Err != nil {
		t.Errorf("A done %v (%v), B done %v (%v): want both closed cleanly", a.Done(), a.Err, b.Done(), b.Err)
	}
	// Same seed, same trace.
	r2, _ := sc.Run(Options{Seed: 1})
	if dump(r2) != dump(r) {
		t.Error("two runs of the scenario file differ")
	}
}

// TestScenarioFileSynTimeout: a checked-in scenario file with a per-host
// sysctl gives Linux's timing for tcp_syn_retries=3.
func TestScenarioFileSynTimeout(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "scenarios", "syn-timeout-3.scn"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc, err := ParseScenario("syn-timeout-3", f)
	if err != nil {
		t.Fatal(err)
	}
	r, err := sc.Run(Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := firstConn(t, r.Env.A)
	var syns []time.Duration
	for _, e := range r.Sim.Trace().Events {
		if e.Host == "A" && e.Kind == KindSend && e.Flags == "S" {
			syns = append(syns, e.T)
		}
	}
	want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}
	if len(syns) != len(want) {
		t.Fatalf("SYNs at %v, want %v\n%s", syns, want, dump(r))
	}
	for i := range want {
		if syns[i] != want[i] {
			t.Errorf("SYN %d at %v, want %v", i, syns[i], want[i])
		}
	}
	if !errors.Is(a.Err, syscall.ETIMEDOUT) || a.Closed != 15*time.Second {
		t.Errorf("A ended with %v at %v, want ETIMEDOUT at 15s", a.Err, a.Closed)
	}
	if r.Env.B.Config.SynRetries == r.Env.A.Config.SynRetries {
		t.Errorf("the sysctl for A changed B too (syn retries %d)", r.Env.B.Config.SynRetries)
	}
}

// TestScenarioFileFastOpen: the Fast Open directives reproduce the
// built-in scenario's story from a file.
func TestScenarioFileFastOpen(t *testing.T) {
	src := `sysctl net.ipv4.tcp_fastopen=3
link delay=10ms
listen B 80 http 1000 fastopen
at 0s A connect 80 fastopen request
at 1s A connect 80 fastopen request
limit 2m`
	sc, err := ParseScenario("tfo", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	r, err := sc.Run(Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if syn := r.Sim.Trace().Find(func(e *Event) bool {
		return e.Host == "A" && e.Kind == KindSend && e.Flags == "S" && *e.Len == len(httpRequest)
	}); syn == nil || syn.T != time.Second {
		t.Errorf("SYN with the request: %v, want the second connection's at 1s", syn)
	}
	if b := r.Env.B.Counters; b.TCPFastOpenCookieReqd != 1 || b.TCPFastOpenPassive != 1 {
		t.Errorf("B: %d cookie requests, %d SYN data accepted; want 1 and 1\n%s", b.TCPFastOpenCookieReqd, b.TCPFastOpenPassive, dump(r))
	}
	for _, c := range r.Env.A.Conns() {
		if c.BytesRead != int64(len(HTTPResponse(1000))) || !c.Done() || c.Err != nil {
			t.Errorf("%s read %d bytes, done %v, error %v", c.label(), c.BytesRead, c.Done(), c.Err)
		}
	}
}

func TestScenarioFileErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"", "nothing to run"},
		{"# only a comment\n", "nothing to run"},
		{"listen B 80 echo\nbogus 1\n", "line 2: unknown directive"},
		{"listen C 80 echo", "line 1: listen wants"},
		{"listen B 0 echo", "listen port"},
		{"listen B 80 ftp", "listen app"},
		{"listen B 80 http", "body size"},
		{"listen B 80 echo extra", "unexpected"},
		{"link delay=-1s", "delay"},
		{"link loss=2", "probability"},
		{"link loss=NaN", "probability"},
		{"link color=red", "impairment"},
		{"link A-B delay=1ms", "direction"}, {"link B<-A delay=1ms", "direction"},
		{"link", "KEY=VALUE"},
		{"sysctl net.ipv4.no_such_knob=1", "no_such_knob"},
		{"sysctl C net.ipv4.tcp_syn_retries=1", "sysctl host"},
		{"limit 0s", "positive"},
		{"drop A nth 3", "drop \"nth\""},
		{"drop A data 0", "from 1"},
		{"drop A syn 3", "wrong number"},
		{"drop A after soon", "after"},
		{"hold A data 3", "hold wants"},
		{"hold A data 3 0s", "hold duration"},
		{"at 1s A", "at wants"},
		{"at -1s A close", "at time"},
		{"at 1s A fly", "unknown action"},
		{"at 1s A connect 80 slow", "byte count"},
		{"at 1s A write lots", "byte count"}, {"at 1s A connect 80 fastopen 1 2", "connect wants"}, {"at 1s A request now", "wrong number"},
		{"at 1s A keepalive maybe", "keepalive"},
	} {
		_, err := ParseScenario("t", strings.NewReader(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.src, err, tc.want)
		}
	}
}

// FuzzParseScenario: no input makes the parser panic, and a scenario it
// accepts runs (bounded) without panicking.
func FuzzParseScenario(f *testing.F) {
	f.Add(helpExample(f))
	if b, err := os.ReadFile(filepath.Join("testdata", "scenarios", "syn-timeout-3.scn")); err == nil {
		f.Add(string(b))
	}
	f.Add("listen A 7 echo\nat 0s B connect 7\nat 1ms B write 100\nat 2ms A abort\nat 3ms B close\nlimit 5s")
	f.Fuzz(func(t *testing.T, src string) {
		sc, err := ParseScenario("fuzz", strings.NewReader(src))
		if err != nil {
			return
		}
		sc.Limit = min(sc.Limit, 10*time.Second)
		for _, d := range []*Impairment{&sc.AB, &sc.BA} {
			d.RateBps = 0 // keep runs short: no slow links
		}
		start := sc.Start
		sc.Start = func(e *Env) {
			e.Sim.MaxEvents = 20000
			start(e)
		}
		sc.Run(Options{Seed: 1}) // an event-budget error is fine
	})
}
