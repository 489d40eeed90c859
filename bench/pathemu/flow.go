//go:build linux

package pathemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Result is what one flow achieved.
type Result struct {
	Name        string  `json:"name"`
	GoodputBps  float64 `json:"goodput_bps"` // bytes received by the receiver's application, bits/s
	Bytes       int64   `json:"bytes"`
	Retransmits int64   `json:"retransmits"` // sender's retransmitted segments (-1 if unknown)
	Seconds     float64 `json:"seconds"`
	MeanRTTms   float64 `json:"mean_rtt_ms,omitempty"` // sender's smoothed RTT (kernel: iperf3 mean_rtt; ustack: at the end)
	Note        string  `json:"note,omitempty"`        // sender state worth a look (cwnd, pacing rate, ...)
}

// Flow is one bulk transfer from side A to side B of a Path. Start sets it
// going and returns once it is under way; Result waits for its end.
// Kernel flows (KernelFlow) and userspace stacks plug in the same way.
type Flow interface {
	Name() string
	Start(ctx context.Context, p *Path) error
	Result() (Result, error)
}

// KernelFlow is an iperf3 transfer between the Linux kernels of namespaces
// A (client, sender) and B (one-off server).
type KernelFlow struct {
	CC       string        // congestion control of the sender: bbr, cubic, reno
	Port     int           // iperf3 port, default 5201
	Duration time.Duration // default 20 s

	server, client *exec.Cmd
	sout, cout     bytes.Buffer
	serr, cerr     bytes.Buffer
}

// Name implements Flow.
func (f *KernelFlow) Name() string { return "linux-" + f.CC }

// Start implements Flow: it starts the iperf3 server in B, waits for it to
// listen, and starts the client in A.
func (f *KernelFlow) Start(ctx context.Context, p *Path) error {
	if p.cfg.StackA {
		return errors.New("pathemu: kernel flow needs a kernel in namespace A")
	}
	if f.Port == 0 {
		f.Port = 5201
	}
	if f.Duration == 0 {
		f.Duration = 20 * time.Second
	}
	port := strconv.Itoa(f.Port)
	f.server = exec.CommandContext(ctx, "ip", "netns", "exec", p.NSB, "iperf3", "-s", "-1", "-p", port, "--json")
	f.server.Stdout, f.server.Stderr = &f.sout, &f.serr
	if err := f.server.Start(); err != nil {
		return fmt.Errorf("pathemu: iperf3 server: %w", err)
	}
	if err := WaitListen(ctx, p.NSB, f.Port, 5*time.Second); err != nil {
		f.server.Process.Kill()
		f.server.Wait()
		return err
	}
	secs := strconv.FormatFloat(f.Duration.Seconds(), 'f', -1, 64)
	f.client = exec.CommandContext(ctx, "ip", "netns", "exec", p.NSA, "iperf3", "-c", AddrB.String(), "-p", port,
		"-t", secs, "-C", f.CC, "--json")
	f.client.Stdout, f.client.Stderr = &f.cout, &f.cerr
	if err := f.client.Start(); err != nil {
		f.server.Process.Kill()
		f.server.Wait()
		return fmt.Errorf("pathemu: iperf3 client: %w", err)
	}
	return nil
}

// Result implements Flow.
func (f *KernelFlow) Result() (Result, error) {
	r := Result{Name: f.Name(), Retransmits: -1}
	if f.client == nil {
		return r, errors.New("pathemu: flow not started")
	}
	cerr := f.client.Wait()
	// The one-off server ends after the client's test; don't wait forever.
	done := make(chan error, 1)
	go func() { done <- f.server.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		f.server.Process.Kill()
		<-done
	}
	if err := parseIperf(f.cout.Bytes(), &r); err != nil {
		return r, fmt.Errorf("pathemu: %s: %v (client: %v %s)", f.Name(), err, cerr, strings.TrimSpace(f.cerr.String()))
	}
	return r, nil
}

type iperfJSON struct {
	Error string `json:"error"`
	End   struct {
		Streams []struct {
			Sender struct {
				MaxSndCwnd int64 `json:"max_snd_cwnd"`
				MaxRTT     int64 `json:"max_rtt"`
				MeanRTT    int64 `json:"mean_rtt"`
			} `json:"sender"`
		} `json:"streams"`
		SumSent struct {
			Bytes       int64   `json:"bytes"`
			Seconds     float64 `json:"seconds"`
			Retransmits int64   `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         int64   `json:"bytes"`
			Seconds       float64 `json:"seconds"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

func parseIperf(b []byte, r *Result) error {
	var j iperfJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("iperf3 JSON: %v", err)
	}
	if j.Error != "" {
		return fmt.Errorf("iperf3: %s", j.Error)
	}
	r.GoodputBps = j.End.SumReceived.BitsPerSecond
	r.Bytes = j.End.SumReceived.Bytes
	r.Seconds = j.End.SumReceived.Seconds
	r.Retransmits = j.End.SumSent.Retransmits
	if len(j.End.Streams) > 0 {
		st := j.End.Streams[0].Sender
		r.MeanRTTms = float64(st.MeanRTT) / 1e3
		r.Note = fmt.Sprintf("max_snd_cwnd=%dB max_rtt=%.1fms", st.MaxSndCwnd, float64(st.MaxRTT)/1e3)
	}
	if r.Seconds == 0 {
		return errors.New("iperf3 reported no transfer")
	}
	return nil
}

// WaitListen polls `ss` in namespace ns until a TCP socket listens on port,
// or the timeout passes.
func WaitListen(ctx context.Context, ns string, port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	want := ":" + strconv.Itoa(port)
	for {
		out, _ := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ss", "-Hltn").Output()
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) >= 4 && strings.HasSuffix(f[3], want) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pathemu: nothing listens on port %d in %s after %v", port, ns, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Jain returns Jain's fairness index of the rates: 1 is a perfectly even
// share, 1/n the most uneven.
func Jain(rates ...float64) float64 {
	var s, s2 float64
	for _, x := range rates {
		s += x
		s2 += x * x
	}
	if s2 == 0 {
		return 0
	}
	return s * s / (float64(len(rates)) * s2)
}

// RunFlows starts the flows together on p, waits for all of them and
// returns their results in order.
func RunFlows(ctx context.Context, p *Path, flows ...Flow) ([]Result, error) {
	var errs []error
	started := make([]bool, len(flows))
	for i, f := range flows {
		if err := f.Start(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		started[i] = true
	}
	res := make([]Result, len(flows))
	for i, f := range flows {
		if !started[i] {
			res[i] = Result{Name: f.Name(), Retransmits: -1}
			continue
		}
		r, err := f.Result()
		res[i] = r
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}
