package sim

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Env is the standard two-host topology of the built-in scenarios: client A
// (10.0.0.1) and server B (10.0.0.2, listening on port 80) on one link.
type Env struct {
	Sim    *Sim
	A, B   *Host
	Link   *Link
	Server netip.AddrPort
	// Client is the connection the scenario's client opened, once it has.
	Client *Conn
	// Fetch is set by scenarios that run an HTTP-like fetch.
	Fetch *Fetch
}

// Scenario is a built-in simulation.
type Scenario struct {
	Name        string
	Description string
	// Limit is how much virtual time the scenario runs at most.
	Limit time.Duration
	// AB and BA are the link's impairments in each direction.
	AB, BA Impairment
	// Tune adjusts the hosts' TCP configuration before sysctls from the
	// command line are applied.
	Tune func(e *Env)
	// Start installs rules, servers and scripted clients.
	Start func(e *Env)
}

// Options control a scenario run.
type Options struct {
	Seed    uint64
	Sysctls []string // "name=value", applied to both hosts
	Pcap    io.Writer
	// ClientPort is the first ephemeral port client A uses (0: 49152).
	ClientPort uint16
	// Link, when set, changes the scenario's link impairments (A->B and
	// B->A) before the run.
	Link func(ab, ba *Impairment)
	// IPv6 runs the scenario between fd00::1 and fd00::2 instead of
	// 10.0.0.1 and 10.0.0.2.
	IPv6 bool
	// EngineTrace, when set, receives the TCP engines' own trace events
	// (see Sim.TraceEngine).
	EngineTrace func(h *Host, t tcp.Tuple, e *tcp.Event)
	// PcapNG writes Pcap in the pcapng format (see Sim.CapturePcapNG).
	PcapNG bool
}

// Result is a finished scenario run.
type Result struct {
	Scenario *Scenario
	Env      *Env
	Sim      *Sim
}

// Scenarios returns the built-in scenarios sorted by name.
func Scenarios() []*Scenario {
	out := slices.Clone(builtins)
	slices.SortFunc(out, func(a, b *Scenario) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup returns the built-in scenario with the given name.
func Lookup(name string) (*Scenario, bool) {
	for _, sc := range builtins {
		if sc.Name == name {
			return sc, true
		}
	}
	return nil, false
}

// ErrUnknownScenario is returned by RunScenario for a name that is not built in.
var ErrUnknownScenario = errors.New("unknown scenario")

// RunScenario runs the named built-in scenario.
func RunScenario(name string, opt Options) (*Result, error) {
	sc, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownScenario, name)
	}
	return sc.Run(opt)
}

// ApplySysctls applies "name=value" settings to cfg.
func ApplySysctls(cfg *tcp.Config, sysctls []string) error {
	for _, kv := range sysctls {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("sysctl %q: want name=value", kv)
		}
		if err := cfg.Set(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return err
		}
	}
	return nil
}

// NewEnv builds the standard two-host topology.
func NewEnv(seed uint64, ab, ba Impairment) *Env {
	return newEnv(seed, ab, ba, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"))
}

// NewEnv6 builds the standard two-host topology over IPv6 (fd00::1, fd00::2).
func NewEnv6(seed uint64, ab, ba Impairment) *Env {
	return newEnv(seed, ab, ba, netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"))
}

func newEnv(seed uint64, ab, ba Impairment, a, b netip.Addr) *Env {
	s := New(seed)
	e := &Env{Sim: s}
	e.A = s.AddHost("A", a)
	e.B = s.AddHost("B", b)
	e.Link = s.Connect(e.A, e.B, ab, ba)
	e.Server = netip.AddrPortFrom(e.B.Addr, 80)
	return e
}

// Run runs the scenario.
func (sc *Scenario) Run(opt Options) (*Result, error) {
	ab, ba := sc.AB, sc.BA
	if opt.Link != nil {
		opt.Link(&ab, &ba)
	}
	e := NewEnv(opt.Seed, ab, ba)
	if opt.IPv6 {
		e = NewEnv6(opt.Seed, ab, ba)
	}
	if opt.ClientPort != 0 {
		e.A.nextPort = opt.ClientPort
	}
	if sc.Tune != nil {
		sc.Tune(e)
	}
	for _, h := range []*Host{e.A, e.B} {
		if err := ApplySysctls(&h.Config, opt.Sysctls); err != nil {
			return nil, err
		}
	}
	if opt.Pcap != nil {
		capture := e.Sim.CapturePcap
		if opt.PcapNG {
			capture = e.Sim.CapturePcapNG
		}
		if err := capture(opt.Pcap); err != nil {
			return nil, err
		}
	}
	if opt.EngineTrace != nil {
		e.Sim.TraceEngine(opt.EngineTrace)
	}
	sc.Start(e)
	if err := e.Sim.Run(sc.Limit); err != nil {
		return nil, err
	}
	if e.Sim.pcap != nil && e.Sim.pcap.err != nil {
		return nil, e.Sim.pcap.err
	}
	return &Result{Scenario: sc, Env: e, Sim: e.Sim}, nil
}

// dial makes A connect to B's port 80 at virtual time at.
func (e *Env) dial(at time.Duration, h Handler) {
	e.Sim.At(at, func() { e.Client = e.A.Dial(e.Server, h) })
}

const ms = time.Millisecond

var lan = Impairment{Delay: 10 * ms}

var builtins = []*Scenario{
	{
		Name:        "syn-timeout",
		Description: "every SYN from A is lost: retransmitted at +1, +3, +7, +15, +31, +63 s; connect fails with ETIMEDOUT at +127 s",
		Limit:       200 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.Sim.AddDropRule(DropSYNs("A"))
			e.B.Listen(80, Discard())
			e.dial(0, Handler{})
		},
	},
	{
		Name:        "synack-loss",
		Description: "every SYN-ACK from B is lost (and A's SYN retransmissions too, so B sees one SYN): B retransmits the SYN-ACK 5 times (1, 2, 4, 8, 16 s apart) and drops the half-open connection at +63 s",
		Limit:       200 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.Sim.AddDropRule(DropSYNACKs("B"))
			e.Sim.AddDropRule(DropSYNRetransmissions("A"))
			e.B.Listen(80, Discard())
			e.dial(0, Handler{})
		},
	},
	{
		Name:        "ack-loss-keepalive",
		Description: "the handshake's final ACK and everything after it from A are lost; B gives up after its SYN-ACK retries; idle A (SO_KEEPALIVE) probes after 7200 s every 75 s and dies after 9 probes (ETIMEDOUT)",
		Limit:       9000 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.Sim.AddDropRule(DropAfterHandshake("A"))
			e.B.Listen(80, Discard())
			e.dial(0, Handler{OnOpen: func(c *Conn) { c.SetKeepAlive(true) }})
		},
	},
	{
		Name:        "ack-loss-retries2",
		Description: "the handshake's final ACK and everything after it from A are lost; A sends data and retransmits it with backoff until tcp_retries2 (about 924.6 s) is spent, then fails with ETIMEDOUT",
		Limit:       1200 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.Sim.AddDropRule(DropAfterHandshake("A"))
			e.B.Listen(80, Discard())
			e.dial(0, Handler{OnOpen: func(c *Conn) { c.Write([]byte("GET / HTTP/1.0\r\n\r\n")) }})
		},
	},
	{
		Name:        "fast-retransmit",
		Description: "A sends 30 kB to a discard server; its 3rd data segment is lost; B's duplicate ACKs make A retransmit it without waiting for the RTO",
		Limit:       120 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.Sim.AddDropRule(DropNthData("A", 3))
			e.B.Listen(80, Discard())
			e.dial(0, Handler{OnOpen: func(c *Conn) {
				c.Write(filler(30000))
				c.CloseWrite()
			}, OnEOF: func(c *Conn) { c.Close() }})
		},
	},
	{
		Name:        "zero-window",
		Description: "B's application stops reading; A's 200 kB fill B's receive buffer, the window closes and A probes it with backoff until B reads again at +30 s",
		Limit:       300 * time.Second,
		AB:          lan, BA: lan,
		Tune: func(e *Env) {
			e.B.Config.RMem = [3]int{4096, 16384, 16384}
			e.B.Config.ModerateRcvbuf = false
		},
		Start: func(e *Env) {
			h := Discard()
			h.OnOpen = func(c *Conn) {
				c.PauseReading(true)
				e.Sim.At(30*time.Second, func() { c.PauseReading(false) })
			}
			e.B.Listen(80, h)
			e.dial(0, Handler{OnOpen: func(c *Conn) {
				c.Write(filler(200000))
				c.CloseWrite()
			}, OnEOF: func(c *Conn) { c.Close() }})
		},
	},
	{
		Name:        "close",
		Description: "A sends a line to an echo server, reads it back and closes: FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT (60 s), CLOSED on A; CLOSE-WAIT, LAST-ACK, CLOSED on B",
		Limit:       120 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.B.Listen(80, Echo())
			got := 0
			e.dial(0, Handler{
				OnOpen: func(c *Conn) { c.Write([]byte("hello, ustack\n")) },
				OnData: func(c *Conn, p []byte) {
					got += len(p)
					if got == len("hello, ustack\n") {
						c.Close()
					}
				},
			})
		},
	},
	{
		Name:        "simultaneous-close",
		Description: "A and B close at the same moment: both go FIN-WAIT-1, CLOSING, TIME-WAIT, CLOSED",
		Limit:       120 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			var server *Conn
			e.B.Listen(80, Handler{OnOpen: func(c *Conn) { server = c }})
			e.dial(0, Handler{})
			e.Sim.At(time.Second, func() {
				if e.Client != nil {
					e.Client.Close()
				}
				if server != nil {
					server.Close()
				}
			})
		},
	},
}

var moreBuiltins = []*Scenario{
	{
		Name:        "reorder",
		Description: "on a 10 Mbit/s link A's 3rd data segment is held back 3 ms, so the next two overtake it: B answers each out-of-order segment at once with a duplicate ACK carrying SACK blocks; two dup ACKs are below the threshold, A does not retransmit",
		Limit:       120 * time.Second,
		AB:          Impairment{Delay: 10 * ms, RateBps: 10_000_000}, BA: lan,
		Start: func(e *Env) {
			e.Sim.AddDropRule(HoldNthData("A", 3, 3*ms))
			e.B.Listen(80, Discard())
			e.dial(0, Handler{OnOpen: func(c *Conn) {
				c.Write(filler(8000))
				c.CloseWrite()
			}, OnEOF: func(c *Conn) { c.Close() }})
		},
	},
	{
		Name:        "refused",
		Description: "nothing listens on B's port 80: B answers A's SYN with RST and the connect fails with ECONNREFUSED after one round trip",
		Limit:       10 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.dial(0, Handler{})
		},
	},
	{
		Name:        "reset",
		Description: "A sends a line to an echo server and then aborts: its RST makes B's connection fail with ECONNRESET",
		Limit:       10 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.B.Listen(80, Echo())
			e.dial(0, Handler{OnOpen: func(c *Conn) {
				c.Write([]byte("hello\n"))
				e.Sim.After(time.Second, c.Abort)
			}})
		},
	},
}

func init() {
	builtins = append(builtins, moreBuiltins...)
	builtins = append(builtins, &Scenario{
		Name:        "zero-window-dead",
		Description: "B's application stops reading and, once B has advertised a zero window, B falls silent: A's window probes go unanswered, back off to 120 s, and after tcp_retries2 (15) probes A gives up with ETIMEDOUT",
		Limit:       3 * time.Hour,
		AB:          lan, BA: lan,
		Tune: func(e *Env) {
			e.B.Config.RMem = [3]int{4096, 16384, 16384}
			e.B.Config.ModerateRcvbuf = false
		},
		Start: func(e *Env) {
			closed := false
			e.Sim.AddDropRule(&DropRule{Name: "B is silent after its zero window", From: "B", Match: func(p *Packet) bool {
				if closed {
					return true
				}
				if ip, tcpb, err := ipTCPView(p.Raw); err == nil && ip && tcpb.Window() == 0 && tcpb.Flags()&wire.TCPFlagSYN == 0 {
					closed = true
				}
				return false
			}})
			h := Discard()
			h.OnOpen = func(c *Conn) { c.PauseReading(true) }
			e.B.Listen(80, h)
			e.dial(0, Handler{OnOpen: func(c *Conn) { c.Write(filler(100000)) }})
		},
	}, &Scenario{
		Name:        "user-timeout",
		Description: "like ack-loss-retries2, but A sets TCP_USER_TIMEOUT to 10 s: its RTO is clamped so it gives up with ETIMEDOUT 10 s after the data was first sent",
		Limit:       200 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.Sim.AddDropRule(DropAfterHandshake("A"))
			e.B.Listen(80, Discard())
			e.dial(0, Handler{OnOpen: func(c *Conn) {
				c.SetUserTimeout(10 * time.Second)
				c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			}})
		},
	}, &Scenario{
		Name:        "reorder-deep",
		Description: "A's 3rd data segment of 20 kB is held back 15 ms, long enough for many later segments to overtake it: B's SACKed duplicate ACKs trigger a fast retransmission that turns out spurious (B reports it with a D-SACK)",
		Limit:       120 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.Sim.AddDropRule(HoldNthData("A", 3, 15*ms))
			e.B.Listen(80, Discard())
			e.dial(0, Handler{OnOpen: func(c *Conn) {
				c.Write(filler(20000))
				c.CloseWrite()
			}, OnEOF: func(c *Conn) { c.Close() }})
		},
	}, &Scenario{
		Name:        "fin-timeout",
		Description: "A closes (orphaning its socket) while B's application never closes: A waits in FIN-WAIT-2 for tcp_fin_timeout (60 s) and is gone; B's late reply at +90 s gets a RST",
		Limit:       200 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.B.Listen(80, Handler{OnOpen: func(c *Conn) {
				e.Sim.At(90*time.Second, func() { c.Write([]byte("too late\n")) })
			}})
			e.dial(0, Handler{OnOpen: func(c *Conn) {
				e.Sim.After(time.Second, c.Close)
			}})
		},
	}, &Scenario{
		Name:        "close-unread",
		Description: "B closes while data it has not read is still queued: like Linux it sends a RST instead of a FIN, and A's connection fails with ECONNRESET",
		Limit:       60 * time.Second,
		AB:          lan, BA: lan,
		Start: func(e *Env) {
			e.B.Listen(80, Handler{OnOpen: func(c *Conn) {
				c.PauseReading(true)
				e.Sim.After(time.Second, c.Close)
			}})
			e.dial(0, Handler{OnOpen: func(c *Conn) { c.Write([]byte("unread request\n")) }})
		},
	}, &Scenario{
		Name: "fastopen",
		Description: "TCP Fast Open (tcp_fastopen=3): A's first connection asks for a cookie in its SYN and B's SYN-ACK grants one, the request follows the handshake (response after 2 RTTs); " +
			"A's second connection sends the cached cookie and the request in its SYN, B accepts the data before the handshake completes and answers at once (response after 1 RTT)",
		Limit: 120 * time.Second,
		AB:    lan, BA: lan,
		Tune: func(e *Env) {
			e.A.Config.FastOpen = tcp.FastOpenClient | tcp.FastOpenServer
			e.B.Config.FastOpen = tcp.FastOpenClient | tcp.FastOpenServer
		},
		Start: func(e *Env) {
			e.B.ListenFastOpen(80, HTTPServer(1000))
			req := []byte("GET / HTTP/1.0\r\n\r\n")
			fetch := Handler{OnEOF: func(c *Conn) { c.Close() }}
			e.Sim.At(0, func() { e.Client = e.A.DialFastOpen(e.Server, fetch, req) })
			e.Sim.At(time.Second, func() { e.A.DialFastOpen(e.Server, fetch, req) })
		},
	})
}

// filler returns n bytes of deterministic data.
func filler(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// ipTCPView returns the TCP header of a packet (ok reports a parse).
func ipTCPView(pkt []byte) (ok bool, t wire.TCP, err error) {
	_, _, payload, err := ipTCP(pkt)
	if err != nil {
		return false, nil, err
	}
	t, err = wire.ParseTCP(payload)
	return err == nil, t, err
}
