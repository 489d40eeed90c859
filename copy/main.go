package tcpcopy

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StackPath, when set, enables Main's --tun option: it returns a Dialer
// that replays through the ustack stack on a new TUN device dev, owning the
// captured client addresses so that each replayed connection keeps its
// captured client address, and a Closer that removes the device. Importing
// github.com/ustack/ustack/copy/stackdial sets it (this package does not
// import the stack itself).
var StackPath func(dev string, mtu int, clients []netip.Addr) (Dialer, io.Closer, error)

// ScanClients reads the sources to their end and returns the distinct
// client addresses of the sessions cfg keeps, in order of appearance.
func ScanClients(srcs []Source, cfg AssemblerConfig) ([]netip.Addr, error) {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	a := NewAssembler(cfg, func(s *Session) {
		if c := s.Client.Addr().Unmap(); !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	})
	for _, src := range srcs {
		for {
			p, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return out, err
			}
			a.Packet(p)
		}
	}
	a.Flush()
	return out, nil
}

// Run reads every source in turn through one Assembler and replays each
// finished session with a Replayer. A source error (corrupt or truncated
// file) stops reading; the sessions read until then are still replayed and
// the error is returned with the report.
func Run(ctx context.Context, srcs []Source, acfg AssemblerConfig, opts Options) (*Report, error) {
	rp := NewReplayer(opts)
	var submitErr error
	asm := NewAssembler(acfg, func(s *Session) {
		if submitErr != nil {
			return
		}
		submitErr = rp.Submit(ctx, s)
	})
	var readErr error
	var names []string
	for _, src := range srcs {
		names = append(names, src.Name())
		if readErr != nil || submitErr != nil {
			break
		}
		for {
			p, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				readErr = err
				break
			}
			if asm.Stats.Packets == 0 {
				rp.SetOrigin(p.Time)
			}
			asm.Packet(p)
			if submitErr != nil || ctx.Err() != nil {
				break
			}
		}
	}
	if ctx.Err() == nil {
		asm.Flush()
	}
	rep := rp.Wait()
	rep.Sources = names
	rep.Capture = asm.Stats
	if readErr == nil && submitErr != nil && !errors.Is(submitErr, context.Canceled) {
		readErr = submitErr
	}
	return rep, readErr
}

type portList []uint16

func (p *portList) String() string {
	var s []string
	for _, v := range *p {
		s = append(s, strconv.Itoa(int(v)))
	}
	return strings.Join(s, ",")
}

func (p *portList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("bad port %q", f)
		}
		*p = append(*p, uint16(n))
	}
	return nil
}

const usage = `usage: ustack copy [flags] -x [PORT-]HOST:PORT FILE.pcap[ng]...
       ustack copy [flags] -x [PORT-]HOST:PORT -i IFACE [--port P] [--duration D]

Replays the TCP sessions of a capture (pcap or pcapng file, or a live
capture on an interface) to a live server: every captured connection becomes
a new connection to the target; the client's bytes are sent in captured
order, each request after the server answered as many bytes as in the
capture (or went quiet for --wait). The target's responses are compared
with the captured ones and a summary is printed (text, or JSON with --json).

Sessions whose captured client stream has a gap (bytes the capture lost)
are reported and skipped unless --replay-gaps.

Exit status: 0 replay done; 1 bad input or replay error (the summary of what
could be read is still printed); 2 usage; 3 with --fail-on-diff when some
connection was not identical.

flags:
`

// Main implements the "ustack copy" subcommand. args excludes the
// subcommand name. It returns the process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ustack copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		pm          PortMap
		serverPorts portList
		iface       = fs.String("i", "", "capture live from this interface (AF_PACKET) instead of files")
		duration    = fs.Duration("duration", 0, "live capture: stop after this long (default: until interrupted)")
		speed       = fs.Float64("speed", 1, "replay speed: 1 = captured timing, 2 = twice as fast, 0 = as fast as possible")
		fast        = fs.Bool("fast", false, "as fast as possible (same as --speed 0)")
		copies      = fs.Int("copies", 1, "replay every session N times (amplification)")
		conc        = fs.Int("concurrency", 256, "maximum connections replaying at once")
		filter      = fs.String("filter", "", "session filter, e.g. 'port 80 and client 10.0.0.0/8' (terms: port, client, server, host, not, and, or)")
		wait        = fs.Duration("wait", 2*time.Second, "how long to wait for expected response bytes when the target goes quiet")
		dialTimeout = fs.Duration("dial-timeout", 5*time.Second, "connect timeout")
		sessTimeout = fs.Duration("session-timeout", 60*time.Second, "give up on a replayed connection this long after its captured duration (scaled by --speed)")
		jsonOut     = fs.Bool("json", false, "write the summary as JSON")
		replayGaps  = fs.Bool("replay-gaps", false, "replay sessions whose client stream has a gap (bytes around it sent back to back)")
		idle        = fs.Duration("idle", 5*time.Minute, "end a captured connection silent this long (capture time)")
		maxBytes    = fs.Int("max-session-bytes", 64<<20, "stream bytes kept per session; more is dropped and the session marked")
		noProgress  = fs.Bool("no-progress", false, "no progress bar even on a terminal")
		ignoreHdr   = fs.String("http-ignore", "", "comma-separated HTTP response header `names` left out of the comparison, e.g. Date,Server,Set-Cookie")
		sample      = fs.Float64("sample", 100, "replay this percentage of the sessions (chosen by a hash of the 4-tuple, like tcpcopy -r)")
		list        = fs.Bool("list", false, "list the captured sessions (one line each) instead of replaying; no target needed")
		failOnDiff  = fs.Bool("fail-on-diff", false, "exit 3 if any connection was not identical")
		maxProblems = fs.Int("max-report", 1000, "list at most this many non-identical connections")
		tunDev      = fs.String("tun", "", "replay through the ustack stack on a new TUN device `NAME`, keeping the captured client addresses (files only)")
		tunMTU      = fs.Int("tun-mtu", 1500, "MTU of the --tun device")
		tunSetup    = fs.String("tun-setup", "", "shell command run once the --tun device exists (env DEV names it), e.g. to give the kernel side an address and routes to the client addresses")
	)
	fs.Var(&pm, "x", "port mapping `[PORT-]HOST:PORT`, like tcpcopy: 80-127.0.0.1:8080 (repeatable, comma-separated)")
	fs.Var(&pm, "target", "same as -x `[PORT-]HOST:PORT`")
	fs.Var(&serverPorts, "port", "server `port`(s): live capture filter, and which side is the server when a connection's handshake is missing")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	// Flags may come before or after the file names.
	var files []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *list {
		if len(files) == 0 {
			fmt.Fprintln(stderr, "ustack copy: --list needs capture files")
			return 2
		}
		flt, err := ParseFilter(*filter)
		if err != nil {
			fmt.Fprintln(stderr, "ustack copy:", err)
			return 2
		}
		return listSessions(files, AssemblerConfig{ServerPorts: append(serverPorts, pm.Ports()...), IdleTimeout: *idle, MaxSessionBytes: *maxBytes, Filter: flt}, stdout, stderr)
	}
	if pm.Empty() {
		fmt.Fprintln(stderr, "ustack copy: no target: give -x [PORT-]HOST:PORT (see --help)")
		return 2
	}
	if (*iface == "") == (len(files) == 0) {
		fmt.Fprintln(stderr, "ustack copy: give capture files or -i IFACE (one of them)")
		return 2
	}
	if *fast {
		*speed = 0
	}
	if *tunDev != "" && *iface != "" {
		fmt.Fprintln(stderr, "ustack copy: --tun needs capture files (the client addresses are collected before the replay), not -i")
		return 2
	}
	if *speed < 0 || *copies < 1 || *conc < 1 {
		fmt.Fprintln(stderr, "ustack copy: --speed must be >= 0, --copies and --concurrency >= 1")
		return 2
	}
	flt, err := ParseFilter(*filter)
	if err != nil {
		fmt.Fprintln(stderr, "ustack copy:", err)
		return 2
	}
	if *sample <= 0 || *sample > 100 {
		fmt.Fprintln(stderr, "ustack copy: --sample must be in (0, 100]")
		return 2
	}
	if *sample < 100 {
		flt = sampled(flt, *sample)
	}
	hints := append([]uint16(nil), serverPorts...)
	hints = append(hints, pm.Ports()...)

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()

	var srcs []Source
	var files2 []*FileSource
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	if *iface != "" {
		ls, err := OpenLive(*iface, serverPorts, *duration)
		if err != nil {
			fmt.Fprintln(stderr, "ustack copy:", err)
			return 1
		}
		// Ctrl-C ends the capture; the sessions seen are then replayed.
		liveCtx, liveCancel := signal.NotifyContext(context.Background(), os.Interrupt)
		defer liveCancel()
		go func() { <-liveCtx.Done(); ls.Stop() }()
		ctx = context.Background()
		srcs = append(srcs, ls)
	} else {
		for _, f := range files {
			fsrc, err := OpenFile(f)
			if err != nil {
				fmt.Fprintln(stderr, "ustack copy:", err)
				return 1
			}
			srcs = append(srcs, fsrc)
			files2 = append(files2, fsrc)
		}
	}

	var dialer Dialer = NetDialer{Timeout: *dialTimeout}
	if *tunDev != "" {
		d, closer, err := openStackPath(*tunDev, *tunMTU, *tunSetup, files, AssemblerConfig{ServerPorts: hints, IdleTimeout: *idle, Filter: flt}, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "ustack copy:", err)
			return 1
		}
		defer closer.Close()
		dialer = d
	}
	opts := Options{
		Target:         pm.Target,
		Dialer:         dialer,
		Speed:          *speed,
		Copies:         *copies,
		Concurrency:    *conc,
		Wait:           *wait,
		IgnoreHeaders:  splitList(*ignoreHdr),
		SessionTimeout: *sessTimeout,
		ReplayGaps:     *replayGaps,
		MaxProblems:    *maxProblems,
	}
	acfg := AssemblerConfig{ServerPorts: hints, IdleTimeout: *idle, MaxSessionBytes: *maxBytes, Filter: flt}

	var prog *progress
	if !*noProgress && isTerminal(stderr) {
		prog = startProgress(stderr, files2)
		opts.OnResult = prog.result
	}
	rep, runErr := Run(ctx, srcs, acfg, opts)
	if prog != nil {
		prog.stop()
	}
	if *jsonOut {
		type jsonReport struct {
			*Report
			Error string `json:"error,omitempty"`
		}
		jr := jsonReport{Report: rep}
		if runErr != nil {
			jr.Error = runErr.Error()
		}
		enc := jsonEncoder(stdout)
		if err := enc.Encode(jr); err != nil {
			fmt.Fprintln(stderr, "ustack copy:", err)
			return 1
		}
	} else {
		rep.WriteText(stdout)
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "ustack copy:", runErr)
		return 1
	}
	if *failOnDiff && !rep.Identical() {
		return 3
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// sampled keeps pct percent of the sessions f keeps, by a hash of the
// 4-tuple (the same sessions on every run).
func sampled(f func(c, s netip.AddrPort) bool, pct float64) func(c, s netip.AddrPort) bool {
	limit := uint64(pct / 100 * float64(1<<32))
	return func(c, s netip.AddrPort) bool {
		if !f(c, s) {
			return false
		}
		h := fnv.New32a()
		b, _ := c.MarshalBinary()
		h.Write(b)
		b, _ = s.MarshalBinary()
		h.Write(b)
		return uint64(h.Sum32()) < limit
	}
}

// listSessions prints one line per captured session, in session order.
func listSessions(files []string, acfg AssemblerConfig, stdout, stderr io.Writer) int {
	var srcs []Source
	for _, f := range files {
		s, err := OpenFile(f)
		if err != nil {
			fmt.Fprintln(stderr, "ustack copy:", err)
			return 1
		}
		defer s.Close()
		srcs = append(srcs, s)
	}
	var lines []string
	var ids []int
	a := NewAssembler(acfg, func(s *Session) {
		flags := ""
		if s.Midstream {
			flags += " midstream"
		}
		if s.ClientRST || s.ServerRST {
			flags += " reset"
		}
		if s.Truncated {
			flags += " truncated"
		}
		for _, g := range s.Gaps {
			flags += fmt.Sprintf(" gap(%s@%d+%d)", map[Dir]string{ClientToServer: "c", ServerToClient: "s"}[g.Dir], g.Offset, g.Len)
		}
		lines = append(lines, fmt.Sprintf("%d\t%v -> %v\t%s\t%d pkts\t%d/%d bytes\t%d exchanges\t%d retrans%s",
			s.ID, s.Client, s.Server, s.Start.UTC().Format("15:04:05.000000"), s.Packets, len(s.ClientData), len(s.ServerData), len(s.Exchanges), s.Retransmitted, flags))
		ids = append(ids, s.ID)
	})
	var readErr error
	for _, src := range srcs {
		for readErr == nil {
			p, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				readErr = err
				break
			}
			a.Packet(p)
		}
	}
	a.Flush()
	idx := make([]int, len(lines))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return ids[idx[i]] < ids[idx[j]] })
	fmt.Fprintln(stdout, "#\tclient -> server\tstart\tpackets\tclient/server bytes\texchanges\tretransmitted segments, marks")
	for _, i := range idx {
		fmt.Fprintln(stdout, lines[i])
	}
	if readErr != nil {
		fmt.Fprintln(stderr, "ustack copy:", readErr)
		return 1
	}
	return 0
}

// openStackPath collects the client addresses of the files, creates the
// TUN device with the stack owning them and runs the setup command.
func openStackPath(dev string, mtu int, setup string, files []string, acfg AssemblerConfig, stderr io.Writer) (Dialer, io.Closer, error) {
	if StackPath == nil {
		return nil, nil, errors.New("--tun: this binary was built without the ustack replay path (import github.com/ustack/ustack/copy/stackdial)")
	}
	var srcs []Source
	for _, f := range files {
		s, err := OpenFile(f)
		if err != nil {
			return nil, nil, err
		}
		defer s.Close()
		srcs = append(srcs, s)
	}
	clients, err := ScanClients(srcs, acfg)
	if err != nil {
		return nil, nil, err
	}
	d, closer, err := StackPath(dev, mtu, clients)
	if err != nil {
		return nil, nil, fmt.Errorf("--tun %s: %w", dev, err)
	}
	if setup != "" {
		cmd := exec.Command("/bin/sh", "-c", setup)
		cmd.Env = append(os.Environ(), "DEV="+dev)
		if out, err := cmd.CombinedOutput(); err != nil {
			closer.Close()
			return nil, nil, fmt.Errorf("--tun-setup: %v\n%s", err, out)
		}
	}
	return d, closer, nil
}

// isTerminal reports whether w is a terminal (a file that answers the
// termios ioctl; /dev/null, pipes and files do not).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return fileIsTerminal(f)
}

// progress draws a one-line progress bar on a terminal.
type progress struct {
	w     io.Writer
	files []*FileSource
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex
	conns int64
	bytes int64
}

func startProgress(w io.Writer, files []*FileSource) *progress {
	p := &progress{w: w, files: files, start: time.Now(), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw()
			case <-p.done:
				fmt.Fprint(p.w, "\r\033[K")
				return
			}
		}
	}()
	return p
}

func (p *progress) result(r *Result) {
	p.mu.Lock()
	p.conns++
	p.bytes += r.SentBytes + r.ReplayedBytes
	p.mu.Unlock()
}

func (p *progress) draw() {
	var read, size int64
	for _, f := range p.files {
		r, s := f.Progress()
		read += r
		size += s
	}
	p.mu.Lock()
	conns, bytes := p.conns, p.bytes
	p.mu.Unlock()
	el := time.Since(p.start).Seconds()
	line := ""
	if size > 0 {
		frac := float64(read) / float64(size)
		const width = 24
		n := int(frac * width)
		line = fmt.Sprintf("[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100)
	}
	line += fmt.Sprintf("%d connections replayed, %.1f MB, %.1f conn/s, %.2f MB/s", conns, float64(bytes)/1e6, float64(conns)/el, float64(bytes)/1e6/el)
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}
