package drill

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ustack/ustack/wire"
)

var (
	ackRe  = regexp.MustCompile(`ack (\d+)`)
	seqRe  = regexp.MustCompile(`(\d+):(\d+)\((\d+)\)`)
	timeRe = regexp.MustCompile(`^(\s*)(\+?)([0-9.]+)(\s)`)
)

// mutate rewrites one line of src with f.
func mutate(src string, line int, f func(string) string) string {
	lines := strings.Split(src, "\n")
	lines[line-1] = f(lines[line-1])
	return strings.Join(lines, "\n")
}

// TestScriptsCanFail changes, in every script, each expected outbound
// packet's ack (or sequence) number, and separately its time, and checks
// that the runner then fails on exactly that line and names the
// difference.
func TestScriptsCanFail(t *testing.T) {
	files, _ := filepath.Glob("testdata/drill/*.pkt")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		s, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range s.Events {
			if ev.Kind != EvPacket || ev.Packet.Inbound {
				continue
			}
			n++
			name := fmt.Sprintf("%s:%d", filepath.Base(file), ev.Line)
			var want string
			mut := mutate(src, ev.Line, func(l string) string {
				if m := ackRe.FindStringSubmatchIndex(l); m != nil && ev.Packet.HasAck {
					v, _ := strconv.Atoi(l[m[2]:m[3]])
					want = "ack"
					return l[:m[2]] + strconv.Itoa(v+1) + l[m[3]:]
				}
				if ev.Packet.Flags&wire.TCPFlagSYN != 0 && strings.Contains(l, "mss 1460") {
					want = "options"
					return strings.Replace(l, "mss 1460", "mss 1400", 1)
				}
				m := seqRe.FindStringSubmatch(l)
				a, _ := strconv.Atoi(m[1])
				e, _ := strconv.Atoi(m[2])
				want = "seq"
				return strings.Replace(l, m[0], fmt.Sprintf("%d:%d(%s)", a+1, e+1, m[3]), 1)
			})
			checkFails(t, name+" ("+want+")", mut, ev.Line, want)

			if ev.Time.Kind == TimeAny || ev.Time.HasRange {
				continue
			}
			mut = mutate(src, ev.Line, func(l string) string {
				m := timeRe.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("%s: no time in %q", name, l)
				}
				v, _ := strconv.ParseFloat(m[3], 64)
				return m[1] + m[2] + strconv.FormatFloat(v+0.5, 'f', 6, 64) + m[4] + l[len(m[0]):]
			})
			checkFails(t, name+" (time)", mut, ev.Line, "expected at")
		}
		if n == 0 {
			t.Errorf("%s: no outbound packet to mutate", file)
		}
	}
}

func checkFails(t *testing.T, name, src string, line int, want string) {
	t.Helper()
	s, err := Parse(src)
	if err != nil {
		t.Errorf("%s: mutated script does not parse: %v", name, err)
		return
	}
	err = Run(s, Options{Dir: "testdata/drill"})
	if err == nil {
		t.Errorf("%s: mutated script passed", name)
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, fmt.Sprintf("line %d:", line)) || !strings.Contains(msg, want) {
		t.Errorf("%s: error %q, want line %d naming %q", name, msg, line, want)
	}
}

// TestMismatchReport checks the exact report for a changed ack number.
func TestMismatchReport(t *testing.T) {
	src := `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1000,nop,wscale 7>
+0 > S. 0:0(0) ack 2 win 65535 <mss 1460,nop,wscale 7>
`
	err := mustRun(t, src)
	want := "line 5: outbound packet mismatch (ack):\n  expected 0.000000 S. 0:0(0) ack 2 win 65535 <mss 1460,nop,wscale 7>\n  actual   0.000000 S. 0:0(0) ack 1 win 65535 <mss 1460,nop,wscale 7>"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	// a packet sent that the script does not expect
	err = mustRun(t, strings.Replace(src, "+0 > S. 0:0(0) ack 2 win 65535 <mss 1460,nop,wscale 7>\n", "+1 < . 1:1(0) ack 1 win 257\n", 1))
	if err == nil || !strings.HasPrefix(err.Error(), "line 5: unexpected outbound packet before this line: 0.000000 S. 0:0(0) ack 1") {
		t.Errorf("stray packet: %v", err)
	}
	// unsupported lines name their line
	for _, c := range []struct{ line, want string }{
		{"+0 `rm -rf /tmp/x`", "unsupported shell command"},
		{"+0 frobnicate(3) = 0", "unsupported system call frobnicate"},
		{"+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = 0", "TCP_FASTOPEN_CONNECT is unsupported"},
		{"+0 %{ import os }%", "unsupported python statement"},
		{"+0 `sysctl -q net.ipv4.tcp_no_such_knob=1`", "no such sysctl"},
	} {
		err := mustRun(t, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"+c.line+"\n")
		if err == nil || !strings.HasPrefix(err.Error(), "line 2: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.line, err)
		}
	}
}

func mustRun(t *testing.T, src string) error {
	t.Helper()
	s, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return Run(s, Options{})
}
