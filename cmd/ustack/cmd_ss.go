package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ustack/ustack/control"
)

// isTerminal reports whether w is a character device (a terminal) and
// NO_COLOR is not set: only then do ss and stat use colour.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type painter bool

func (p painter) paint(code, s string) string {
	if !p {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func runSS(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ustack ss", "ustack ss --control PATH [--json] [--listening | --all]", stderr)
	path := fs.String("control", "", "control socket of the running program (ustack serve --control PATH, or control.Serve)")
	jsonOut := fs.Bool("json", false, "print the connections as JSON")
	listening := fs.Bool("listening", false, "show only listeners")
	all := fs.Bool("all", false, "show listeners too (default: connections only, like ss)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 || *path == "" {
		fmt.Fprintln(stderr, "ustack ss: want --control PATH and no arguments")
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conns, err := control.Connections(ctx, *path)
	if err != nil {
		fmt.Fprintln(stderr, "ustack ss:", err)
		return 1
	}
	var shown []control.Conn
	for _, c := range conns {
		isL := c.State == "LISTEN"
		if (*listening && isL) || (!*listening && (*all || !isL)) {
			shown = append(shown, c)
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if shown == nil {
			shown = []control.Conn{}
		}
		if err := enc.Encode(shown); err != nil {
			fmt.Fprintln(stderr, "ustack ss:", err)
			return 1
		}
		return 0
	}
	writeSS(stdout, shown, painter(isTerminal(stdout)))
	return 0
}

// writeSS prints connections like `ss -tni`: an aligned table of state,
// queues and addresses, each connection followed by an indented line of
// its tcp_info fields.
func writeSS(w io.Writer, conns []control.Conn, p painter) {
	lw, sw := len("Local Address:Port"), len("State")
	for _, c := range conns {
		lw, sw = max(lw, len(c.Local)), max(sw, len(c.State))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", p.paint("1", fmt.Sprintf("%-*s %7s %7s %-*s %s", sw, "State", "Recv-Q", "Send-Q", lw, "Local Address:Port", "Peer Address:Port")))
	for _, c := range conns {
		color := "33"
		switch c.State {
		case "ESTAB":
			color = "32"
		case "LISTEN":
			color = "36"
		}
		fmt.Fprintf(&b, "%s %7d %7d %-*s %s\n", p.paint(color, fmt.Sprintf("%-*s", sw, c.State)), c.RecvQ, c.SendQ, lw, c.Local, peer(c))
		if c.State == "LISTEN" {
			continue
		}
		fmt.Fprintf(&b, "\t %s\n", infoLine(c))
	}
	io.WriteString(w, b.String())
}

func peer(c control.Conn) string {
	if c.Remote == "" {
		return "*:*"
	}
	return c.Remote
}

func infoLine(c control.Conn) string {
	f := []string{
		"ca:" + c.CAState,
		fmt.Sprintf("rto:%g", c.RTO),
		fmt.Sprintf("rtt:%g/%g", c.RTT, c.RTTVar),
		fmt.Sprintf("mss:%d", c.MSS),
		fmt.Sprintf("cwnd:%d", c.Cwnd),
	}
	if c.Ssthresh > 0 {
		f = append(f, fmt.Sprintf("ssthresh:%d", c.Ssthresh))
	}
	f = append(f,
		fmt.Sprintf("bytes_sent:%d", c.BytesSent),
		fmt.Sprintf("bytes_acked:%d", c.BytesAcked),
		fmt.Sprintf("bytes_received:%d", c.BytesRecv),
		fmt.Sprintf("segs_out:%d", c.SegsOut),
		fmt.Sprintf("segs_in:%d", c.SegsIn),
		fmt.Sprintf("retrans:%d/%d", c.Retrans, c.TotalRetrans),
	)
	if c.Unacked > 0 {
		f = append(f, fmt.Sprintf("unacked:%d", c.Unacked))
	}
	if c.Lost > 0 {
		f = append(f, fmt.Sprintf("lost:%d", c.Lost))
	}
	if c.Sacked > 0 {
		f = append(f, fmt.Sprintf("sacked:%d", c.Sacked))
	}
	if c.MinRTT > 0 {
		f = append(f, fmt.Sprintf("minrtt:%g", c.MinRTT))
	}
	if c.PacingRate > 0 {
		f = append(f, fmt.Sprintf("pacing_rate:%dbps", c.PacingRate*8))
	}
	if c.DeliveryRate > 0 {
		f = append(f, fmt.Sprintf("delivery_rate:%dbps", c.DeliveryRate*8))
	}
	f = append(f, fmt.Sprintf("snd_wnd:%d", c.SndWnd), fmt.Sprintf("rcv_wnd:%d", c.RcvWnd))
	if c.CC != "" && c.CCState != "" {
		f = append(f, ccInfo(c))
	}
	return strings.Join(f, " ")
}

// ccInfo is the controller's part of the info line, the way ss prints
// Linux's INET_DIAG_BBRINFO ("bbr:(bw:94.1Mbps,mrtt:20.1,pacing_gain:1.25,
// cwnd_gain:2)"), followed by the state ss does not show but Linux's BBR
// has (bbr_state:PROBE_BW_UP) and, once set, the short-term bandwidth
// bound and the inflight bounds (bw_lo, inflight_hi, inflight_lo).
func ccInfo(c control.Conn) string {
	var in []string
	if c.BwEstimate > 0 {
		in = append(in, "bw:"+bps(c.BwEstimate*8))
	}
	if c.CCMinRTT > 0 {
		in = append(in, "mrtt:"+strconv.FormatFloat(c.CCMinRTT, 'g', -1, 64))
	}
	if c.PacingGain > 0 {
		in = append(in, "pacing_gain:"+strconv.FormatFloat(c.PacingGain, 'g', -1, 64))
	}
	if c.CwndGain > 0 {
		in = append(in, "cwnd_gain:"+strconv.FormatFloat(c.CwndGain, 'g', -1, 64))
	}
	s := c.CC + ":(" + strings.Join(in, ",") + ") " + c.CC + "_state:" + c.CCState
	if c.BwLo > 0 {
		s += " bw_lo:" + bps(c.BwLo*8)
	}
	if c.InflightHi > 0 {
		s += fmt.Sprintf(" inflight_hi:%d", c.InflightHi)
	}
	if c.InflightLo > 0 {
		s += fmt.Sprintf(" inflight_lo:%d", c.InflightLo)
	}
	return s
}

// bps formats a rate in bits/s the way ss does: 94.1Mbps, 812kbps, 900bps.
func bps(v int64) string {
	f := float64(v)
	switch {
	case f >= 1e9:
		return strconv.FormatFloat(f/1e9, 'f', 1, 64) + "Gbps"
	case f >= 1e6:
		return strconv.FormatFloat(f/1e6, 'f', 1, 64) + "Mbps"
	case f >= 1e3:
		return strconv.FormatFloat(f/1e3, 'f', 1, 64) + "kbps"
	}
	return strconv.FormatInt(v, 10) + "bps"
}

func runStat(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ustack stat", "ustack stat --control PATH [--json] [--zeros] [PATTERN...]", stderr)
	path := fs.String("control", "", "control socket of the running program (ustack serve --control PATH, or control.Serve)")
	jsonOut := fs.Bool("json", false, "print the counters as JSON")
	zeros := fs.Bool("zeros", false, "show counters that are zero too (like nstat -z)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "ustack stat: want --control PATH")
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctrs, err := control.Stats(ctx, *path)
	if err != nil {
		fmt.Fprintln(stderr, "ustack stat:", err)
		return 1
	}
	shown := []control.Counter{}
	for _, c := range ctrs {
		if c.Value == 0 && !*zeros {
			continue
		}
		if len(pos) > 0 {
			match := false
			for _, p := range pos {
				if strings.Contains(strings.ToLower(c.Name), strings.ToLower(p)) {
					match = true
				}
			}
			if !match {
				continue
			}
		}
		shown = append(shown, c)
	}
	if *jsonOut {
		m := make(map[string]uint64, len(shown))
		for _, c := range shown {
			m[c.Name] = c.Value
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(m); err != nil {
			fmt.Fprintln(stderr, "ustack stat:", err)
			return 1
		}
		return 0
	}
	p := painter(isTerminal(stdout))
	nw := len("#ustack")
	for _, c := range shown {
		nw = max(nw, len(c.Name))
	}
	var b strings.Builder
	fmt.Fprintln(&b, p.paint("1", fmt.Sprintf("%-*s %20s", nw, "#ustack", "value")))
	for _, c := range shown {
		fmt.Fprintf(&b, "%-*s %20d\n", nw, c.Name, c.Value)
	}
	io.WriteString(stdout, b.String())
	return 0
}
