//go:build linux

// Package pathemu emulates a network path in real time between two network
// namespaces, so real TCP senders (the Linux kernel's, ustack's) can be
// measured over a bottleneck with delay, a tail-drop queue and random loss.
//
// A Path creates two namespaces, A and B, and one TUN device in each (opened
// in the root namespace, then moved). Every packet the kernel in A sends on
// its TUN device is read by the Path, judged by link's deterministic
// Impairer (random loss, bottleneck serialization at RateBps with a QueueLen
// packet tail-drop queue, then Delay), and written to B's TUN device when
// due; the reverse direction is impaired the same way. Addresses are only
// configured inside the namespaces (A = 10.201.0.1/24, B = 10.201.0.2/24);
// nothing is configured in the root namespace and nothing leaves the pair.
//
// With Config.StackA the A side has no kernel at all: the Path hands out an
// in-memory endpoint (EndpointA) for a userspace stack that owns AddrA, and
// more (StackEndpoint) for stacks owning other addresses of Prefix, all
// behind the same bottleneck.
//
// Each direction records the queueing delay of every packet at the
// bottleneck (time waiting before its serialization starts), computed from
// the Impairer's decision, so queue delay is exact to the model and does not
// depend on timer precision. It also records how late packets left against
// the model's delivery time (Stats.LateSum, LateMax): the emulation's own
// error, large when the machine is short of CPU.
//
// Traffic comes from Flows (Start, then Result): KernelFlow runs iperf3
// between the kernels of A and B; UstackFlow runs a ustack Stack on side A
// sending to a Go discard server in B (the running binary re-executed in B
// with DiscardEnv set; call MaybeServeDiscard first thing in main or
// TestMain). RunFlows starts several together, Jain rates their fairness.
// The command bench/cmd/pathbench runs the whole matrix.
package pathemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/ustack/ustack/link"
)

// Config describes the emulated path. Each direction gets the same
// impairment (with its own seed).
type Config struct {
	Delay    time.Duration // one-way propagation delay (default 10 ms)
	RateBps  int64         // bottleneck rate, bits/s (default 100e6)
	QueueLen int           // tail-drop queue, packets (default 250)
	Loss     float64       // random loss probability per direction
	Seed     int64         // seed of the A->B direction; B->A uses Seed+1
	MTU      int           // default 1500

	// Offload opens the TUN devices with TSO/checksum offload: the sending
	// kernel hands over super-packets (split by link into MTU segments
	// before the model judges them) and segments of one flow delivered at
	// the same instant are merged again on the way into the receiving
	// kernel (as GRO would on a NIC). Far fewer system calls per byte.
	Offload bool

	// StackA leaves namespace A without a kernel endpoint: EndpointA
	// returns the link endpoint a userspace stack on side A uses.
	StackA bool
}

// Addresses used inside the namespaces.
var (
	AddrA  = netip.MustParseAddr("10.201.0.1")
	AddrB  = netip.MustParseAddr("10.201.0.2")
	AddrA2 = netip.MustParseAddr("10.201.0.3") // a second userspace stack on side A (StackEndpoint)
	Prefix = netip.MustParsePrefix("10.201.0.0/24")
)

// Path is a running emulated path.
type Path struct {
	cfg      Config
	NSA, NSB string // namespace names

	tunA, tunB link.Endpoint
	devA, devB string        // TUN device names (devA empty with StackA)
	stackEnd   link.Endpoint // StackA: the end handed to the stack owning AddrA
	hub        *hub          // StackA: side A's switch between the stacks and the shuttle
	ab, ba     *direction
	closed     bool
}

// DefaultConfig is the path of the BBR issue: 100 Mbit/s, 10 ms each way,
// 250 packets of queue, no loss, TUN offload on.
func DefaultConfig() Config {
	return Config{Delay: 10 * time.Millisecond, RateBps: 100e6, QueueLen: 250, MTU: 1500, Seed: 1, Offload: true}
}

// New sets up the namespaces and devices and starts the shuttles. The
// caller must Close the Path.
func New(cfg Config) (p *Path, err error) {
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.Loss < 0 || cfg.Loss >= 1 {
		return nil, fmt.Errorf("pathemu: loss %v out of [0,1)", cfg.Loss)
	}
	var rb [4]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(rb[:])
	p = &Path{cfg: cfg, NSA: "ustack-pa-" + id, NSB: "ustack-pb-" + id}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := run("ip", "netns", "add", p.NSB); err != nil {
		return p, err
	}
	if !cfg.StackA {
		if err := run("ip", "netns", "add", p.NSA); err != nil {
			return p, err
		}
	}
	tb, err := link.OpenTUNConfig(link.TUNConfig{Name: "upb" + id, MTU: cfg.MTU, Offload: cfg.Offload})
	if err != nil {
		return p, err
	}
	p.tunB = tb
	p.devB = tb.Name()
	if err := setupNS(p.NSB, p.devB, AddrB); err != nil {
		return p, err
	}
	var aSide link.Endpoint
	if cfg.StackA {
		p.hub = newHub(cfg.MTU)
		if p.stackEnd, err = p.hub.port(AddrA); err != nil {
			return p, err
		}
		aSide = p.hub
		p.tunA = p.hub
	} else {
		ta, err := link.OpenTUNConfig(link.TUNConfig{Name: "upa" + id, MTU: cfg.MTU, Offload: cfg.Offload})
		if err != nil {
			return p, err
		}
		p.tunA = ta
		aSide = ta
		p.devA = ta.Name()
		if err := setupNS(p.NSA, p.devA, AddrA); err != nil {
			return p, err
		}
	}
	im := link.Impairment{Delay: cfg.Delay, RateBps: cfg.RateBps, QueueLen: cfg.QueueLen, Loss: cfg.Loss, Seed: cfg.Seed}
	p.ab = newDirection(aSide, p.tunB, im)
	im.Seed++
	p.ba = newDirection(p.tunB, aSide, im)
	p.ab.start()
	p.ba.start()
	return p, nil
}

func setupNS(ns, dev string, addr netip.Addr) error {
	cmds := [][]string{
		{"ip", "link", "set", "dev", dev, "netns", ns},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "addr", "add", netip.PrefixFrom(addr, Prefix.Bits()).String(), "dev", dev},
		{"ip", "-n", ns, "link", "set", "dev", dev, "up"},
		// Quiet the link: no IPv6 chatter on the measured path.
		{"ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"},
	}
	for _, c := range cmds {
		if err := run(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pathemu: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Config returns the path's configuration.
func (p *Path) Config() Config { return p.cfg }

// EndpointA is the link endpoint of side A for a userspace stack (only with
// Config.StackA; nil otherwise). The stack owns AddrA on it; Close of the
// Path closes it too.
func (p *Path) EndpointA() link.Endpoint { return p.stackEnd }

// StackEndpoint returns the link endpoint of a userspace stack owning addr
// on side A (only with Config.StackA): AddrA's is EndpointA, any other
// address of Prefix gets its own, as a second host behind the same
// bottleneck (for fairness runs between two stacks).
func (p *Path) StackEndpoint(addr netip.Addr) (link.Endpoint, error) {
	if p.hub == nil {
		return nil, errors.New("pathemu: no userspace side A (Config.StackA)")
	}
	return p.hub.port(addr)
}

// Stats returns the counters of the A->B and B->A directions.
func (p *Path) Stats() (ab, ba Stats) { return p.ab.stats(), p.ba.stats() }

// ResetStats zeroes both directions' counters (the model keeps its state).
func (p *Path) ResetStats() { p.ab.reset(); p.ba.reset() }

// DeviceTxDrops returns the packets the kernels of A and B dropped while
// sending into their TUN devices (the device queue overflowed because the
// shuttle did not read fast enough): drops the emulation added beyond the
// model. With StackA, a is 0.
func (p *Path) DeviceTxDrops() (a, b uint64, err error) {
	if p.devA != "" {
		if a, err = txDropped(p.NSA, p.devA); err != nil {
			return
		}
	}
	b, err = txDropped(p.NSB, p.devB)
	return
}

func txDropped(ns, dev string) (uint64, error) {
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev).Output()
	if err != nil {
		return 0, fmt.Errorf("pathemu: ip -s link in %s: %w", ns, err)
	}
	var v []struct {
		Stats64 struct {
			TX struct {
				Dropped uint64 `json:"dropped"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &v); err != nil || len(v) == 0 {
		return 0, fmt.Errorf("pathemu: ip -s -j link output in %s: %v", ns, err)
	}
	return v[0].Stats64.TX.Dropped, nil
}

// Exec returns a command run inside namespace ns (p.NSA or p.NSB).
func (p *Path) Exec(ns string, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Close stops the shuttles, closes the devices and deletes the namespaces.
func (p *Path) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for _, d := range []*direction{p.ab, p.ba} {
		if d != nil {
			d.stop()
		}
	}
	for _, ep := range []link.Endpoint{p.tunA, p.tunB, p.stackEnd} {
		if ep != nil {
			ep.Close()
		}
	}
	for _, d := range []*direction{p.ab, p.ba} {
		if d != nil {
			d.wait()
		}
	}
	for _, ns := range []string{p.NSA, p.NSB} {
		if nsExists(ns) {
			if err := run("ip", "netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func nsExists(ns string) bool {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == ns {
			return true
		}
	}
	return false
}
