// Command ustack is the command line of the ustack userspace TCP/IP stack.
//
//	ustack demo                  fetch over a simulated lossy link, print the TCP timeline
//	ustack sim SCENARIO [flags]  run a built-in deterministic scenario
//	ustack sim --list            list the scenarios
//	ustack demo --real           the demo with net/http on two ustack stacks, real time
//	ustack copy [flags] FILE...  replay captured TCP sessions against a server
//	ustack drill FILE...         run packetdrill scripts against the engine
//	ustack plot TRACE.jsonl      time-sequence and cwnd/RTT graphs of a sim or demo trace
//
// and serve, dial, get, ping, ss and stat on a TUN device or an in-memory
// link; "ustack help" lists them all.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	tcpcopy "github.com/ustack/ustack/copy"
	"github.com/ustack/ustack/drill"
	"github.com/ustack/ustack/sim"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/trace"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: ustack <command> [flags]

commands:
  demo      a client fetches from an HTTP-like server over a simulated lossy link
            (2% loss, 20 ms delay) and prints the TCP timeline and a transfer summary
  sim       run a built-in deterministic scenario (ustack sim --list) or a scenario file on virtual time
  copy      replay TCP sessions captured in pcap/pcapng files (or live) against a server
            and compare its answers with the captured ones
  drill     run packetdrill scripts against the TCP engine on virtual time
  ss        list the TCP connections of a running ustack program (its control socket), like ss -ti
  stat      show the TCP/IP counters of a running ustack program, like nstat
  serve     serve echo, discard, http or https on a TUN device (--pipe: self-test in memory)
  dial      connect over a TUN device and copy stdin/stdout, like nc (--pipe: to a built-in echo)
  get       fetch an http(s) URL over a TUN device (--pipe: from a built-in server)
  plot      draw tcptrace-like graphs (SVG, PNG): time-sequence, cwnd/ssthresh/in flight, RTT,
            from the trace of "ustack sim SCENARIO --json" or "ustack demo --json"
  ping      send ICMP echo requests from the stack on a TUN device (--pipe: in memory)
  help      show this help, or "ustack help <command>" for a command's flags

Run "ustack <command> --help" for the flags of a command.
`

// run is the whole command: it returns the exit code (0 ok, 1 failure,
// 2 usage error).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "sim":
		return runSim(args[1:], stdout, stderr)
	case "copy":
		return tcpcopy.Main(args[1:], stdout, stderr)
	case "drill":
		return drill.Main(args[1:], stdout, stderr)
	case "ss":
		return runSS(args[1:], stdout, stderr)
	case "stat":
		return runStat(args[1:], stdout, stderr)
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "dial":
		return runDial(args[1:], stdout, stderr)
	case "get":
		return runGet(args[1:], stdout, stderr)
	case "plot":
		return runPlot(args[1:], stdout, stderr)
	case "ping":
		return runPing(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ustack: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

const pcapNGUsage = "write --pcap FILE as pcapng, each host an interface named after it (Wireshark: frame.interface_name)"

const engineTraceUsage = "also write the TCP engines' own trace (states, segments and why they were sent, RTO, cwnd/ssthresh, window, Fast Open events) to this file as JSON lines; virtual time starts at 2026-01-01T00:00:00Z"

// openEngineTrace creates name for --engine-trace and returns the
// simulator hook that writes the engines' events to it as JSON lines, and
// the function that flushes and closes it.
func openEngineTrace(name string) (func(*sim.Host, tcp.Tuple, *tcp.Event), func() error, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriter(f)
	j := trace.NewJSON(bw)
	hook := func(_ *sim.Host, t tcp.Tuple, e *tcp.Event) { j.Event(t, e) }
	closeFn := func() error {
		err := j.Err()
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return hook, closeFn, nil
}

// sysctlFlag collects repeated --sysctl name=value flags.
type sysctlFlag []string

func (s *sysctlFlag) String() string { return strings.Join(*s, ",") }
func (s *sysctlFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return errors.New("want name=value, e.g. net.ipv4.tcp_syn_retries=3")
	}
	*s = append(*s, v)
	return nil
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseInterspersed parses flags that may come before or after positional
// arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ustack demo", "ustack demo [--loss P] [--delay D] [--rate BPS] [--queue N] [--size N] [--seed N] [--all] [--json] [--pcap FILE [--pcapng]] [--engine-trace FILE] [--real] [--sysctl name=value]...", stderr)
	def := sim.DefaultDemoOptions()
	loss := fs.Float64("loss", def.Loss, "packet loss probability in each direction")
	delay := fs.Duration("delay", def.Delay, "one-way link delay")
	size := fs.Int("size", def.Size, "response body size in bytes")
	seed := fs.Uint64("seed", def.Seed, "random seed (same seed, same run)")
	rate := fs.Int64("rate", 0, "bottleneck rate each way in bit/s, e.g. 10000000 (0 = unlimited)")
	queue := fs.Int("queue", 0, "bottleneck queue in packets, with --rate (0 = unbounded)")
	all := fs.Bool("all", false, "print every segment, not just the highlights")
	jsonOut := fs.Bool("json", false, "print the full trace as JSON lines instead of the timeline")
	pcapFile := fs.String("pcap", "", "write the packets to this pcap file")
	pcapNG := fs.Bool("pcapng", false, pcapNGUsage)
	engineTrace := fs.String("engine-trace", "", engineTraceUsage)
	real := fs.Bool("real", false, "instead of the simulator, run net/http on two ustack stacks over an impaired in-memory link in real time")
	timeout := fs.Duration("timeout", 60*time.Second, "with --real: give up after this long")
	var sysctls sysctlFlag
	fs.Var(&sysctls, "sysctl", "set a TCP sysctl on both hosts, e.g. net.ipv4.tcp_congestion_control=reno (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "ustack demo: unexpected argument %q\n", pos[0])
		fs.Usage()
		return 2
	}
	if *loss < 0 || *loss > 1 || *size <= 0 || *size > 256<<20 || *delay < 0 || *rate < 0 || *queue < 0 {
		fmt.Fprintln(stderr, "ustack demo: --loss must be in [0,1], --size in 1..268435456, --delay, --rate and --queue not negative")
		return 2
	}
	opts := sim.DemoOptions{Seed: *seed, Delay: *delay, Loss: *loss, Size: *size, RateBps: *rate, Queue: *queue, Sysctls: sysctls}
	if *real {
		if *jsonOut || *all || *engineTrace != "" || *pcapNG {
			fmt.Fprintln(stderr, "ustack demo: --json, --all, --engine-trace and --pcapng apply to the simulated demo, not --real")
			return 2
		}
		var pf *os.File
		var w io.Writer
		if *pcapFile != "" {
			if pf, err = os.Create(*pcapFile); err != nil {
				fmt.Fprintln(stderr, "ustack demo:", err)
				return 1
			}
			w = pf
		}
		err := runRealDemo(stdout, opts, *timeout, w)
		if pf != nil {
			if cerr := pf.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, "ustack demo --real:", err)
			return 1
		}
		if *pcapFile != "" {
			fmt.Fprintf(stdout, "  packets (as the client saw them) written to %s\n", *pcapFile)
		}
		return 0
	}
	var pf *os.File
	if *pcapFile != "" {
		if pf, err = os.Create(*pcapFile); err != nil {
			fmt.Fprintln(stderr, "ustack demo:", err)
			return 1
		}
		opts.Pcap, opts.PcapNG = pf, *pcapNG
	}
	var closeTrace func() error
	if *engineTrace != "" {
		if opts.EngineTrace, closeTrace, err = openEngineTrace(*engineTrace); err != nil {
			fmt.Fprintln(stderr, "ustack demo:", err)
			return 1
		}
	}
	res, err := sim.Demo(opts)
	if pf != nil {
		if cerr := pf.Close(); err == nil {
			err = cerr
		}
	}
	if closeTrace != nil {
		if cerr := closeTrace(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "ustack demo:", err)
		return 1
	}
	tr := res.Env.Sim.Trace()
	if *jsonOut {
		if err := tr.WriteJSON(stdout); err != nil {
			fmt.Fprintln(stderr, "ustack demo:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "ustack demo: host A (10.0.0.1) fetches %d bytes from an HTTP-like server on host B (10.0.0.2:80)\n", *size)
	fmt.Fprintf(stdout, "over a simulated link with %v one-way delay and %.1f%% loss each way (virtual time, seed %d)\n\n", *delay, *loss*100, *seed)
	if *all {
		err = tr.WriteText(stdout, sim.Everything)
	} else {
		fmt.Fprintln(stdout, "timeline (state transitions, handshake and FIN segments, drops, retransmissions; --all shows every segment)")
		fmt.Fprintln(stdout, "  time in seconds, host:port, event; > sent; flags S SYN, F FIN, R RST, P PSH, . ACK; seq/ack relative to each side's ISN")
		err = tr.WriteHighlights(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "ustack demo:", err)
		return 1
	}
	fmt.Fprintln(stdout)
	res.WriteSummary(stdout)
	if *pcapFile != "" {
		fmt.Fprintf(stdout, "  packets written to %s\n", *pcapFile)
	}
	return 0
}

func runSim(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ustack sim", "ustack sim SCENARIO|FILE [--sysctl name=value]... [--seed N] [--delay D] [--loss P] [--ipv6] [--brief | --json] [--pcap FILE [--pcapng]] [--engine-trace FILE]\n"+
		"       ustack sim --list | --all | --file-help\n\n"+
		"Runs a built-in scenario (ustack sim --list) or a scenario file (ustack sim --file-help shows the format)\n"+
		"on virtual time and prints its timeline and summary.", stderr)
	list := fs.Bool("list", false, "list the built-in scenarios")
	fileHelp := fs.Bool("file-help", false, "describe the scenario file format")
	runAll := fs.Bool("all", false, "run every scenario and print how each connection ended")
	seed := fs.Uint64("seed", 1, "random seed (same seed, same trace)")
	jsonOut := fs.Bool("json", false, "print the trace as JSON lines instead of the timeline")
	var delay *time.Duration
	var loss *float64
	fs.Func("delay", "override the scenario link's one-way delay, both ways, with this `duration` (e.g. 50ms)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("want a non-negative duration such as 50ms")
		}
		delay = &d
		return nil
	})
	fs.Func("loss", "override the scenario link's random loss `probability`, both ways (0..1)", func(v string) error {
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || p < 0 || p > 1 {
			return errors.New("want a probability between 0 and 1")
		}
		loss = &p
		return nil
	})
	ipv6 := fs.Bool("ipv6", false, "run the scenario over IPv6 (fd00::1, fd00::2)")
	brief := fs.Bool("brief", false, "print only the highlights: state changes, drops, retransmissions, timeouts, handshake and FIN segments")
	pcapFile := fs.String("pcap", "", "write the packets to this pcap file (LINKTYPE_RAW)")
	pcapNG := fs.Bool("pcapng", false, pcapNGUsage)
	engineTrace := fs.String("engine-trace", "", engineTraceUsage)
	var sysctls sysctlFlag
	fs.Var(&sysctls, "sysctl", "set a TCP sysctl on both hosts, e.g. net.ipv4.tcp_syn_retries=3 (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if *fileHelp {
		fmt.Fprint(stdout, sim.ScenarioFileHelp)
		return 0
	}
	if *list {
		for _, sc := range sim.Scenarios() {
			fmt.Fprintf(stdout, "%-20s %s\n", sc.Name, sc.Description)
		}
		return 0
	}
	if *runAll {
		for _, sc := range sim.Scenarios() {
			res, err := sc.Run(sim.Options{Seed: *seed, Sysctls: sysctls, IPv6: *ipv6})
			if err != nil {
				fmt.Fprintf(stderr, "ustack sim: %s: %v\n", sc.Name, err)
				return 1
			}
			fmt.Fprintf(stdout, "%-20s", sc.Name)
			for _, h := range res.Sim.Hosts() {
				for _, c := range h.Conns() {
					end := c.State().String() + " (still open)"
					if c.Done() {
						end = fmt.Sprintf("%s %.3fs", c.State(), c.Closed.Seconds())
					}
					if c.Err != nil {
						end += " " + sim.ErrnoName(c.Err)
					}
					fmt.Fprintf(stdout, "  %s:%d %s", h.Name, c.Tuple.Local.Port(), end)
				}
			}
			fmt.Fprintln(stdout)
		}
		return 0
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "ustack sim: want exactly one scenario name (see ustack sim --list)")
		fs.Usage()
		return 2
	}
	sc, ok := sim.Lookup(pos[0])
	if !ok {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "ustack sim: unknown scenario %q: not built in (see ustack sim --list) and not a readable scenario file (%v)\n", pos[0], err)
			return 2
		}
		sc, err = sim.ParseScenario(pos[0], f)
		f.Close()
		if err != nil {
			fmt.Fprintln(stderr, "ustack sim:", err)
			return 2
		}
	}
	opts := sim.Options{Seed: *seed, Sysctls: sysctls, IPv6: *ipv6}
	if delay != nil || loss != nil {
		opts.Link = func(ab, ba *sim.Impairment) {
			for _, im := range []*sim.Impairment{ab, ba} {
				if delay != nil {
					im.Delay = *delay
				}
				if loss != nil {
					im.Loss = *loss
				}
			}
		}
	}
	var pf *os.File
	if *pcapFile != "" {
		if pf, err = os.Create(*pcapFile); err != nil {
			fmt.Fprintln(stderr, "ustack sim:", err)
			return 1
		}
		opts.Pcap, opts.PcapNG = pf, *pcapNG
	}
	var closeTrace func() error
	if *engineTrace != "" {
		if opts.EngineTrace, closeTrace, err = openEngineTrace(*engineTrace); err != nil {
			fmt.Fprintln(stderr, "ustack sim:", err)
			return 1
		}
	}
	res, err := sc.Run(opts)
	if pf != nil {
		if cerr := pf.Close(); err == nil {
			err = cerr
		}
	}
	if closeTrace != nil {
		if cerr := closeTrace(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "ustack sim:", err)
		return 1
	}
	tr := res.Sim.Trace()
	if *jsonOut {
		err = tr.WriteJSON(stdout)
	} else {
		fmt.Fprintf(stdout, "scenario %s: %s\n\n", res.Scenario.Name, res.Scenario.Description)
		if *brief {
			err = tr.WriteHighlights(stdout)
		} else {
			err = tr.WriteText(stdout, sim.Everything)
		}
		if err == nil {
			fmt.Fprintln(stdout)
			res.Sim.WriteSummary(stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "ustack sim:", err)
		return 1
	}
	return 0
}
