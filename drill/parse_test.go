package drill

import (
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

func TestParseLines(t *testing.T) {
	src := `// comment
--tolerance_usecs=10000
/* block
   comment */
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0  fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0  connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0  > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+.1 < S. 0:0(0) ack 1 win 65535 <mss 1000,nop,nop,sackOK,nop,wscale 6,FO abcd0123,FOEXP,sack 1:2 3:4>
+.2~+.3 > P. 1:4001(4000) ack 1 <...>
+.1...0.400 accept(3, ..., ...) = 4
* > F. 1:1(0) ack 1 win 257
+0 ` + "`sysctl -q net.ipv4.tcp_syn_retries=3`" + `
+0 %{
assert tcpi_state == TCP_ESTABLISHED, tcpi_state
}%
`
	s, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Options) != 1 || s.Options[0].Name != "tolerance_usecs" || s.Options[0].Value != "10000" {
		t.Errorf("options %+v", s.Options)
	}
	if len(s.Events) != 12 {
		t.Fatalf("%d events", len(s.Events))
	}
	ev := s.Events[6]
	if ev.Line != 11 || ev.Packet == nil || !ev.Packet.Inbound || ev.Packet.Flags != wire.TCPFlagSYN|wire.TCPFlagACK || !ev.Packet.HasAck || ev.Packet.Win != 65535 {
		t.Errorf("line 11: %+v %+v", ev, ev.Packet)
	}
	if o := ev.Packet.Opts; len(o) != 9 || o[6].Kind != OptFO || len(o[6].Cookie) != 4 || o[7].Kind != OptFOExp || o[7].Cookie != nil || len(o[8].Blocks) != 2 {
		t.Errorf("options %+v", o)
	}
	ev = s.Events[7]
	if !ev.Time.HasRange || ev.Time.T != 200*time.Millisecond || ev.Time.RangeEnd != 300*time.Millisecond || !ev.Packet.AnyOpts || ev.Packet.Len != 4000 {
		t.Errorf("line 12: %+v", ev.Time)
	}
	ev = s.Events[8]
	if !ev.Time.Blocking || ev.Time.End != 400*time.Millisecond || ev.Time.EndRel || ev.Syscall.Name != "accept" {
		t.Errorf("line 13: %+v", ev.Time)
	}
	if s.Events[9].Time.Kind != TimeAny {
		t.Errorf("line 14 time %+v", s.Events[8].Time)
	}
	if sc := s.Events[4].Syscall; sc.Errno != "EINPROGRESS" || sc.ErrText != "Operation now in progress" || sc.Result.Int != -1 {
		t.Errorf("connect: %+v", sc)
	}
	if s.Events[10].Kind != EvShell || s.Events[11].Kind != EvPython {
		t.Errorf("shell/python kinds")
	}
}

func TestParseErrorsNameLine(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 1 <bogus 1>\n", "line 2: unsupported TCP option"},
		{"0 < Q 0:0(0)\n", "line 1: unknown TCP flag"},
		{"\n\n0 < S 0:5(1)\n", "line 3: sequence range"},
		{"0 hello\n", "line 1: expected \"(\""},
		{"0 %{ assert x\n", "line 1: unterminated"},
		{"0 > S 0:0(0) win 70000\n", "line 1: window"},
		{"0 < S 0:0(0) <sack>\n", "line 1: sack needs"},
	} {
		_, err := Parse(c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.src, err, c.want)
		}
	}
}

func TestPython(t *testing.T) {
	vars := func(n string) (int64, bool) {
		m := map[string]int64{"tcpi_state": 1, "TCP_ESTABLISHED": 1, "tcpi_options": 5, "TCPI_OPT_SACK": 2, "tcpi_rto": 1000000}
		v, ok := m[n]
		return v, ok
	}
	as, err := parsePython("\n assert tcpi_state == TCP_ESTABLISHED, tcpi_state\n# c\nassert tcpi_options & TCPI_OPT_SACK == 0\nassert 900000 <= tcpi_rto <= 1100000 and not tcpi_state == 2\n", 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 3 || as[0].line != 8 || as[2].line != 11 {
		t.Fatalf("%+v", as)
	}
	for _, a := range as {
		v, err := evalPython(a.expr, vars)
		if err != nil || v == 0 {
			t.Errorf("%q: %v %v", a.expr, v, err)
		}
	}
	if _, err := parsePython("import os\n", 1); err == nil {
		t.Error("import accepted")
	}
	if _, err := evalPython("tcpi_nope == 1", vars); err == nil {
		t.Error("unknown name accepted")
	}
}

func TestParseECNUrgNoFlags(t *testing.T) {
	s, err := Parse("0 < [ect0] - 1:1001(1000) win 20000\n+0 > [ce] U. 1:2(1) ack 1 urg 1\n")
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Events[0].Packet, s.Events[1].Packet
	if a.ECN != "ect0" || a.Flags != 0 || a.Len != 1000 || b.ECN != "ce" || !b.HasUrg || b.Urg != 1 || b.Flags != wire.TCPFlagURG|wire.TCPFlagACK {
		t.Errorf("%+v %+v", a, b)
	}
	if _, err := Parse("0 < [ect9] S 0:0(0)\n"); err == nil || !strings.Contains(err.Error(), "line 1: unknown ECN marking") {
		t.Errorf("bad ECN: %v", err)
	}
}
