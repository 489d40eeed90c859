package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ustack/ustack/plot"
)

func runPlot(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ustack plot", "ustack plot TRACE.jsonl [-o PREFIX] [--conn MATCH] [--list]\n\n"+
		"Draws tcptrace-like graphs from a simulator trace (ustack sim SCENARIO --json > TRACE.jsonl,\n"+
		"or ustack demo --json): PREFIX-tsg.svg/.png (time-sequence graph: data, retransmissions, drops,\n"+
		"ACKs, SACK blocks, receive window), PREFIX-cwnd.svg/.png (cwnd, ssthresh and packets in\n"+
		"flight; RTT samples, srtt and BBR's min RTT) and PREFIX-rate.svg/.png (the acked rate measured\n"+
		"from the trace; for BBR senders also pacing rate, bandwidth estimate, delivery rate and the BBR\n"+
		"state as coloured bands, e.g. ustack demo --sysctl net.ipv4.tcp_congestion_control=bbr --json).\n"+
		"\"-\" reads the trace from standard input.", stderr)
	out := fs.String("o", "", "output file prefix (default: the trace file name without .jsonl; \"plot\" for stdin)")
	match := fs.String("conn", "", "plot the data flow whose \"host local>remote\" contains this (default: the flow that sent the most)")
	list := fs.Bool("list", false, "list the data flows of the trace and exit")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "ustack plot: want exactly one trace file")
		fs.Usage()
		return 2
	}
	var r io.Reader = os.Stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintln(stderr, "ustack plot:", err)
			return 1
		}
		defer f.Close()
		r = f
	}
	evs, err := plot.ReadTrace(r)
	if err != nil {
		fmt.Fprintln(stderr, "ustack plot:", err)
		return 1
	}
	if *list {
		for _, k := range plot.Flows(evs) {
			fmt.Fprintln(stdout, k)
		}
		return 0
	}
	flow, err := plot.Analyze(evs, *match)
	if err != nil {
		fmt.Fprintln(stderr, "ustack plot:", err)
		return 1
	}
	prefix := *out
	if prefix == "" {
		prefix = "plot"
		if pos[0] != "-" {
			prefix = strings.TrimSuffix(strings.TrimSuffix(pos[0], ".jsonl"), ".json")
		}
	}
	tsg := plot.TimeSequence(flow)
	cw, missing := plot.CwndRTT(flow)
	rate, rateMissing := plot.Rate(flow)
	if len(flow.States) > 0 { // BBR: no ssthresh to miss
		missing = slices.DeleteFunc(missing, func(s string) bool { return s == "ssthresh" })
	}
	files := []struct {
		name   string
		charts []*plot.Chart
		svg    bool
	}{
		{prefix + "-tsg.svg", []*plot.Chart{tsg}, true},
		{prefix + "-tsg.png", []*plot.Chart{tsg}, false},
		{prefix + "-cwnd.svg", cw, true},
		{prefix + "-cwnd.png", cw, false},
		{prefix + "-rate.svg", []*plot.Chart{rate}, true},
		{prefix + "-rate.png", []*plot.Chart{rate}, false},
	}
	if dir := filepath.Dir(prefix); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(stderr, "ustack plot:", err)
			return 1
		}
	}
	for _, f := range files {
		if err := writeChartFile(f.name, f.svg, f.charts); err != nil {
			fmt.Fprintln(stderr, "ustack plot:", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "flow %s %s: %d data bytes in %d segments, %d retransmitted, %d dropped, %d SACK blocks, %d RTT samples, %.6f s to %.6f s\n",
		flow.Host, flow.Conn, flow.Bytes, len(flow.Data), flow.Retrans, len(flow.Drops), len(flow.SACKs), len(flow.RTT), flow.Start, flow.End)
	for _, f := range files {
		fmt.Fprintf(stdout, "wrote %s\n", f.name)
	}
	if len(missing) > 0 {
		fmt.Fprintf(stdout, "note: the trace has no %s field: the cwnd chart shows packets in flight and RTT samples measured from the segments instead\n", strings.Join(missing, "/"))
	}
	if len(rateMissing) > 0 {
		fmt.Fprintf(stdout, "note: the trace has no %s field (the simulator records them for BBR senders): the rate chart shows the acked rate measured from the trace only\n", strings.Join(rateMissing, "/"))
	} else {
		fmt.Fprintf(stdout, "rate model: %d pacing, %d bandwidth estimate, %d delivery rate, %d min RTT points; %d state spans\n", len(flow.Pacing), len(flow.BW), len(flow.DRate), len(flow.MinRTT), len(flow.States))
	}
	return 0
}

func writeChartFile(name string, svg bool, charts []*plot.Chart) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if svg {
		err = plot.WriteSVG(f, charts...)
	} else {
		err = plot.WritePNG(f, charts...)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
