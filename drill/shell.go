package drill

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ustack/ustack/tcp"
)

// shell runs a backquoted command line. Only commands that configure the
// stack are understood: sysctl settings in their various spellings,
// sourcing a script of such lines, flushing the Fast Open cookie cache,
// and restore scripts (no-ops). Anything else fails the script.
func (r *runner) shell(ev *Event, cmdline string, depth int) error {
	if depth > 8 {
		return r.failf(ev, "shell scripts nested too deeply")
	}
	cmdline = strings.ReplaceAll(cmdline, "\\\n", " ") // line continuations
	for _, cmd := range splitCommands(cmdline) {
		words, err := shellWords(cmd)
		if err != nil {
			return r.failf(ev, "shell command %q: %v", cmd, err)
		}
		if len(words) == 0 {
			continue
		}
		if err := r.shellCommand(ev, words, depth); err != nil {
			return err
		}
	}
	return nil
}

// splitCommands splits on ; && and newlines outside quotes.
func splitCommands(s string) []string {
	var out []string
	var cur strings.Builder
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote = c
			cur.WriteByte(c)
		case c == ';' || c == '\n':
			out = append(out, cur.String())
			cur.Reset()
		case c == '&' && i+1 < len(s) && s[i+1] == '&':
			out = append(out, cur.String())
			cur.Reset()
			i++
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// shellWords splits a command into words honouring quotes and dropping
// a trailing comment.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0 && !(quote == '"' && c == '$'):
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == '#' && !in:
			i = len(s)
		case c == ' ' || c == '\t' || c == '\r':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '$' && strings.HasPrefix(s[i:], "$(("):
			j := strings.Index(s[i:], "))")
			if j < 0 {
				return nil, fmt.Errorf("unterminated $((")
			}
			v, err := evalPython(s[i+3:i+j], func(string) (int64, bool) { return 0, false })
			if err != nil {
				return nil, fmt.Errorf("arithmetic %q: %v", s[i:i+j+2], err)
			}
			cur.WriteString(strconv.FormatInt(v, 10))
			in = true
			i += j + 1
		case quote != 0:
			return nil, fmt.Errorf("unsupported shell syntax %q in quotes", c)
		case c == '|' || c == '<' || c == '`' || c == '$':
			return nil, fmt.Errorf("unsupported shell syntax %q", c)
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

func (r *runner) setSysctl(ev *Event, name, value string) error {
	name = strings.TrimSpace(name)
	if ignoredSysctls[strings.ReplaceAll(strings.TrimPrefix(name, "/proc/sys/"), "/", ".")] {
		r.logf("sysctl %s=%s ignored (no ustack counterpart)", name, value)
		return nil
	}
	// Linux's proc_dointvec reads integers with base 0 (0x207 is common in
	// Fast Open scripts); tcp.Config.Set wants decimal, so convert.
	fields := strings.Fields(value)
	for i, f := range fields {
		if strings.HasPrefix(f, "0x") || strings.HasPrefix(f, "0X") {
			if v, err := strconv.ParseInt(f[2:], 16, 64); err == nil {
				fields[i] = strconv.FormatInt(v, 10)
			}
		}
	}
	if len(fields) > 0 && !strings.Contains(name, "fastopen_key") {
		value = strings.Join(fields, " ")
	}
	if err := r.cfg.Set(name, strings.TrimSpace(value)); err != nil {
		return r.failf(ev, "sysctl %s=%s: %v", name, value, err)
	}
	r.logf("sysctl %s=%s", name, value)
	return nil
}

// ignoredSysctls are Linux knobs with no counterpart in ustack (it has
// no TSO, and tcp_fack is gone from Linux too). Setting them is accepted
// and logged; any other unknown name fails the script.
var ignoredSysctls = map[string]bool{
	"net.ipv4.tcp_tso_win_divisor": true,
	"net.ipv4.tcp_min_tso_segs":    true,
	"net.ipv4.tcp_fack":            true,
	"net.ipv4.tcp_ecn_option":      true,
}

func (r *runner) shellCommand(ev *Event, w []string, depth int) error {
	// output redirections to /dev/null do not matter here
	for len(w) > 1 {
		last := w[len(w)-1]
		if last == "2>&1" || last == ">/dev/null" || last == "2>/dev/null" || last == "&>/dev/null" {
			w = w[:len(w)-1]
			continue
		}
		if len(w) > 2 && (w[len(w)-2] == ">" || w[len(w)-2] == "2>") && last == "/dev/null" {
			w = w[:len(w)-2]
			continue
		}
		break
	}
	base := filepath.Base(w[0])
	switch {
	case base == "sysctl":
		n := 0
		for _, a := range w[1:] {
			if strings.HasPrefix(a, "-") {
				switch a {
				case "-q", "-w", "-qw", "-wq", "-e":
					continue
				}
				return r.failf(ev, "sysctl option %s is unsupported", a)
			}
			name, val, ok := strings.Cut(a, "=")
			if !ok {
				return r.failf(ev, "sysctl %s: only NAME=VALUE settings are supported", a)
			}
			if err := r.setSysctl(ev, name, val); err != nil {
				return err
			}
			n++
		}
		if n == 0 {
			return r.failf(ev, "sysctl without a NAME=VALUE setting")
		}
		return nil
	case base == "set_sysctls.py":
		for _, a := range w[1:] {
			name, val, ok := strings.Cut(a, "=")
			if !ok {
				return r.failf(ev, "set_sysctls.py %s: expected /proc/sys/NAME=VALUE", a)
			}
			if err := r.setSysctl(ev, name, val); err != nil {
				return err
			}
		}
		return nil
	case base == "echo" && len(w) >= 3 && strings.HasPrefix(w[len(w)-1], ">"):
		return r.failf(ev, "echo redirections are unsupported; use sysctl -q NAME=VALUE")
	case base == "ip" && len(w) >= 3 && w[1] == "tcp_metrics" && w[2] == "flush":
		clear(r.cookies)
		return nil
	case strings.Contains(base, "restore"), len(w) > 1 && w[len(w)-1] == "restore":
		return nil
	case base == "source" || base == ".":
		if len(w) != 2 {
			return r.failf(ev, "%s needs one file", base)
		}
		return r.sourceFile(ev, w[1], depth)
	case strings.HasSuffix(base, ".sh") && len(w) == 1:
		return r.sourceFile(ev, w[0], depth)
	case base == "true" || base == ":":
		return nil
	case base == "tc" && len(w) >= 4 && w[1] == "qdisc" && (w[len(w)-1] == "pfifo" || w[len(w)-1] == "pfifo_fast"):
		// ustack has no queueing discipline: a plain FIFO is what it has
		r.logf("%s: no-op (ustack has no qdisc)", strings.Join(w, " "))
		return nil
	}
	return r.failf(ev, "unsupported shell command %q (only sysctl settings are understood)", strings.Join(w, " "))
}

func (r *runner) sourceFile(ev *Event, name string, depth int) error {
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.opt.Dir, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return r.failf(ev, "sourcing %s: %v", name, err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		s := strings.TrimSpace(line)
		if s == "" || s[0] == '#' {
			continue
		}
		if err := r.shell(ev, s, depth+1); err != nil {
			if e, ok := err.(*Error); ok {
				e.Msg = fmt.Sprintf("%s line %d: %s", name, i+1, e.Msg)
			}
			return err
		}
	}
	return nil
}

// Linux numbering of tcp_info fields scripts compare against.
var pyConstants = map[string]int64{
	"TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3, "TCP_FIN_WAIT1": 4,
	"TCP_FIN_WAIT2": 5, "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7, "TCP_CLOSE_WAIT": 8,
	"TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11,
	"TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2, "TCPI_OPT_WSCALE": 4, "TCPI_OPT_ECN": 8,
	"TCPI_OPT_ECN_SEEN": 16, "TCPI_OPT_SYN_DATA": 32,
	"TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3, "TCP_CA_Loss": 4,
}

var linuxState = map[tcp.State]int64{
	tcp.Established: 1, tcp.SynSent: 2, tcp.SynReceived: 3, tcp.FinWait1: 4, tcp.FinWait2: 5,
	tcp.TimeWait: 6, tcp.Closed: 7, tcp.CloseWait: 8, tcp.LastAck: 9, tcp.Listen: 10, tcp.Closing: 11,
}

func infoVars(in tcp.Info) map[string]int64 {
	us := func(d interface{ Microseconds() int64 }) int64 { return d.Microseconds() }
	var opts int64
	if in.Options.Timestamps {
		opts |= 1
	}
	if in.Options.SACK {
		opts |= 2
	}
	if in.Options.WScale {
		opts |= 4
	}
	if in.Options.ECN {
		opts |= 8
	}
	if in.Options.SynData {
		opts |= 32
	}
	return map[string]int64{
		"tcpi_state": linuxState[in.State], "tcpi_ca_state": int64(in.CAState),
		"tcpi_retransmits": int64(in.Retransmits), "tcpi_probes": int64(in.Probes),
		"tcpi_backoff": int64(in.Backoff), "tcpi_options": opts,
		"tcpi_snd_wscale": int64(in.SndWScale), "tcpi_rcv_wscale": int64(in.RcvWScale),
		"tcpi_rto": us(in.RTO), "tcpi_ato": us(in.ATO), "tcpi_snd_mss": int64(in.SndMSS),
		"tcpi_rcv_mss": int64(in.RcvMSS), "tcpi_unacked": int64(in.Unacked), "tcpi_sacked": int64(in.Sacked),
		"tcpi_lost": int64(in.Lost), "tcpi_retrans": int64(in.Retrans), "tcpi_fackets": int64(in.Fackets),
		"tcpi_pmtu": int64(in.PMTU), "tcpi_rcv_ssthresh": int64(in.RcvSsthresh), "tcpi_rtt": us(in.RTT),
		"tcpi_rttvar": us(in.RTTVar), "tcpi_snd_ssthresh": int64(in.SndSsthresh), "tcpi_snd_cwnd": int64(in.SndCwnd),
		"tcpi_advmss": int64(in.AdvMSS), "tcpi_reordering": int64(in.Reordering), "tcpi_rcv_rtt": us(in.RcvRTT),
		"tcpi_rcv_space": int64(in.RcvSpace), "tcpi_total_retrans": int64(in.TotalRetrans),
		"tcpi_pacing_rate": in.PacingRate, "tcpi_max_pacing_rate": in.MaxPacingRate,
		"tcpi_bytes_acked": int64(in.BytesAcked), "tcpi_bytes_received": int64(in.BytesReceived),
		"tcpi_bytes_sent": int64(in.BytesSent), "tcpi_bytes_retrans": int64(in.BytesRetrans),
		"tcpi_segs_out": int64(in.SegsOut), "tcpi_segs_in": int64(in.SegsIn),
		"tcpi_data_segs_out": int64(in.DataSegsOut), "tcpi_data_segs_in": int64(in.DataSegsIn),
		"tcpi_notsent_bytes": int64(in.NotsentBytes), "tcpi_min_rtt": us(in.MinRTT),
		"tcpi_delivery_rate": in.DeliveryRate, "tcpi_delivered": int64(in.Delivered),
		"tcpi_dsack_dups": int64(in.DSACKDups), "tcpi_reord_seen": int64(in.ReordSeen),
		"tcpi_snd_wnd": int64(in.SndWnd), "tcpi_rcv_wnd": int64(in.RcvWnd),
		"tcpi_last_data_sent": in.LastDataSent.Milliseconds(), "tcpi_last_data_recv": in.LastDataRecv.Milliseconds(),
		"tcpi_last_ack_recv": in.LastAckRecv.Milliseconds(),
	}
}

// python evaluates the asserts of a %{ }% block against the tcp_info of
// the connection under test.
func (r *runner) python(ev *Event) error {
	asserts, err := parsePython(ev.Text, ev.Line)
	if err != nil {
		return err
	}
	if r.cur == nil || r.cur.c == nil {
		return r.failf(ev, "python block without a connection under test")
	}
	// Info measures "time since" from the connection's latest call: an
	// early Timeout (harmless) brings it to the current virtual time.
	if r.cur.c.State() != tcp.Closed {
		r.cur.c.Timeout(r.now)
	}
	vars := infoVars(r.cur.c.Info())
	look := func(n string) (int64, bool) {
		if v, ok := vars[n]; ok {
			return v, true
		}
		v, ok := pyConstants[n]
		return v, ok
	}
	for _, a := range asserts {
		v, err := evalPython(a.expr, look)
		if err != nil {
			return &Error{Line: a.line, Msg: fmt.Sprintf("python: %s: %v", a.expr, err)}
		}
		if v == 0 {
			return &Error{Line: a.line, Msg: fmt.Sprintf("assertion failed: %s (%s)", a.expr, describeVars(a.expr, vars))}
		}
	}
	return nil
}

func describeVars(expr string, vars map[string]int64) string {
	toks, _ := pyLex(expr)
	var parts []string
	seen := map[string]bool{}
	for _, t := range toks {
		if v, ok := vars[t.s]; ok && !seen[t.s] {
			seen[t.s] = true
			parts = append(parts, fmt.Sprintf("%s=%d", t.s, v))
		}
	}
	return strings.Join(parts, " ")
}
