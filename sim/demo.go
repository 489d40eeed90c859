package sim

import (
	"fmt"
	"io"
	"time"

	"github.com/ustack/ustack/tcp"
)

// DemoOptions configure Demo; DefaultDemoOptions gives the demo's defaults.
type DemoOptions struct {
	Seed    uint64
	Delay   time.Duration // one-way delay of the link
	Loss    float64       // loss probability in each direction
	Size    int           // response body bytes (0 means 200000)
	RateBps int64         // bottleneck rate each way in bit/s (0 = unlimited)
	Queue   int           // bottleneck queue in packets (0 = unbounded)
	Sysctls []string
	Pcap    io.Writer
	// ClientPort is the client's first ephemeral port (0: 49152).
	ClientPort uint16
	// EngineTrace, when set, receives the TCP engines' own trace events
	// (see Sim.TraceEngine).
	EngineTrace func(h *Host, t tcp.Tuple, e *tcp.Event)
	// PcapNG writes Pcap in the pcapng format (see Sim.CapturePcapNG).
	PcapNG bool
}

// DefaultDemoOptions returns the options of "ustack demo": seed 1, 20 ms
// one-way delay, 2% loss each way, a 200 kB response.
func DefaultDemoOptions() DemoOptions {
	return DemoOptions{Seed: 1, Delay: 20 * time.Millisecond, Loss: 0.02, Size: 200000}
}

// DemoResult is a finished Demo run.
type DemoResult struct {
	Env   *Env
	Fetch *Fetch
}

// Demo runs an HTTP-like fetch from client A to server B over one lossy link.
func Demo(o DemoOptions) (*DemoResult, error) {
	if o.Size == 0 {
		o.Size = 200000
	}
	im := Impairment{Delay: o.Delay, Loss: o.Loss, RateBps: o.RateBps, QueueLen: o.Queue}
	e := NewEnv(o.Seed, im, im)
	if o.ClientPort != 0 {
		e.A.nextPort = o.ClientPort
	}
	for _, h := range []*Host{e.A, e.B} {
		if err := ApplySysctls(&h.Config, o.Sysctls); err != nil {
			return nil, err
		}
	}
	if o.Pcap != nil {
		capture := e.Sim.CapturePcap
		if o.PcapNG {
			capture = e.Sim.CapturePcapNG
		}
		if err := capture(o.Pcap); err != nil {
			return nil, err
		}
	}
	if o.EngineTrace != nil {
		e.Sim.TraceEngine(o.EngineTrace)
	}
	e.B.Listen(80, HTTPServer(o.Size))
	e.Fetch = e.Sim.StartFetch(e.A, 0, e.Server, "GET /index.html HTTP/1.0\r\nHost: 10.0.0.2\r\n\r\n")
	if err := e.Sim.Run(10 * time.Minute); err != nil {
		return nil, err
	}
	if e.Sim.pcap != nil && e.Sim.pcap.err != nil {
		return nil, e.Sim.pcap.err
	}
	return &DemoResult{Env: e, Fetch: e.Fetch}, nil
}

// WriteSummary writes the transfer summary of the demo.
func (r *DemoResult) WriteSummary(w io.Writer) {
	f := r.Fetch
	a, b := r.Env.A, r.Env.B
	n := int64(f.Response.Len())
	fmt.Fprintf(w, "transfer summary\n")
	if !f.Completed {
		fmt.Fprintf(w, "  fetch did not complete: %d bytes received", n)
		if f.Conn != nil && f.Conn.Err != nil {
			fmt.Fprintf(w, " (%v)", f.Conn.Err)
		}
		fmt.Fprintln(w)
	} else {
		d := f.Done - f.Start
		fmt.Fprintf(w, "  bytes received:   %d (response incl. headers)\n", n)
		fmt.Fprintf(w, "  virtual duration: %s s (connect to EOF)\n", fmtSeconds(d))
		if d > 0 {
			fmt.Fprintf(w, "  goodput:          %.3f Mbit/s\n", Goodput(n, d)*8/1e6)
		} else {
			fmt.Fprintf(w, "  goodput:          unbounded (no delay, no rate limit)\n")
		}
	}
	retrans := 0
	for _, h := range []*Host{a, b} {
		for _, c := range h.all {
			retrans += c.Retransmits
		}
	}
	ab, ba := r.Env.Link.AB.Stats, r.Env.Link.BA.Stats
	if q := ab.QueueDropped + ba.QueueDropped; q > 0 {
		fmt.Fprintf(w, "  queue drops:      %d client->server, %d server->client\n", ab.QueueDropped, ba.QueueDropped)
	}
	fmt.Fprintf(w, "  retransmissions:  %d (server: %d fast, %d after timeout; client: %d)\n", retrans,
		b.Counters.TCPFastRetrans, b.Counters.TCPSlowStartRetrans, a.Counters.RetransSegs)
	fmt.Fprintf(w, "  packets lost:     %d of %d client->server, %d of %d server->client\n",
		ab.Lost, ab.Sent, ba.Lost, ba.Sent)
	if conns := b.Conns(); len(conns) > 0 && conns[0].tc != nil {
		in := conns[0].tc.Info()
		ss := "infinite"
		if in.SndSsthresh < 1<<30 {
			ss = fmt.Sprint(in.SndSsthresh)
		}
		fmt.Fprintf(w, "  server tcp_info:  srtt %v, rto %v, cwnd %d, ssthresh %s (packets), %d bytes retransmitted\n",
			in.RTT, in.RTO, in.SndCwnd, ss, in.BytesRetrans)
	}
}
