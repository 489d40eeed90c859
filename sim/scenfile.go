package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ustack/ustack/tcp"
)

// ScenarioFileHelp describes the scenario file format ParseScenario reads.
const ScenarioFileHelp = `A scenario file runs on the standard topology: host A (10.0.0.1) and host B
(10.0.0.2; fd00::1 and fd00::2 with --ipv6) joined by one link. One directive
per line; # starts a comment; times and durations are Go durations (10ms, 2s).

  description TEXT...           shown above the timeline
  limit D                       virtual time to run at most (default 10m)
  link [A->B|B->A] KEY=VALUE... impairments, both directions unless one is named:
                                delay, jitter (durations), loss, reorder, duplicate,
                                corrupt (probabilities), rate (bit/s), queue (packets)
  sysctl [A|B] NAME=VALUE       a TCP sysctl on one host, or both
  listen HOST PORT APP [fastopen]
                                APP is echo, discard, or http BYTES (an HTTP-like
                                server answering a request, up to an empty line,
                                with BYTES of body, then closing)
  drop HOST syn|synack|syn-retransmissions|after-handshake
  drop HOST packet N | data N   the N-th packet / data segment HOST sends (from 1)
  drop HOST after T             everything HOST sends from virtual time T on
  hold HOST data N D            delay HOST's N-th data segment by D (reordering)
  at T HOST ACTION...           at virtual time T, on HOST:
      connect PORT [fastopen] [BYTES|request]
                                open a connection to the other host; it closes
                                once the peer has closed. BYTES of data (or an
                                HTTP request) are written at once: with Fast Open
                                and a cookie from an earlier connection they go
                                in the SYN
      write BYTES | request | close | shutdown | abort | pause | resume
      keepalive on|off | user-timeout D  on HOST's latest connection

Example:
  description A sends 20 kB to a discard server; its 3rd data segment is lost
  link delay=10ms
  listen B 80 discard
  drop A data 3
  at 0s A connect 80
  at 0s A write 20000
  at 0s A shutdown
`

// ParseScenario reads a scenario file (see ScenarioFileHelp) named name.
// Errors name the line.
func ParseScenario(name string, r io.Reader) (*Scenario, error) {
	sc := &Scenario{Name: name, Description: "scenario file " + name, Limit: 10 * time.Minute}
	var tunes []func(e *Env)
	var starts []func(e *Env)
	sysctls := map[string][]string{}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; s.Scan(); n++ {
		line, _, _ := strings.Cut(s.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("scenario %s line %d: %s", name, n, fmt.Sprintf(format, a...))
		}
		args := f[1:]
		switch f[0] {
		case "description":
			sc.Description = strings.Join(args, " ")
		case "limit":
			d, err := duration(args, 0)
			if err != nil || d <= 0 {
				return nil, bad("limit wants a positive duration")
			}
			sc.Limit = d
		case "link":
			dirs := []*Impairment{&sc.AB, &sc.BA}
			if len(args) > 0 && !strings.Contains(args[0], "=") {
				switch args[0] {
				case "A->B":
					dirs = dirs[:1]
				case "B->A":
					dirs = dirs[1:]
				default:
					return nil, bad("link direction %q: want A->B or B->A", args[0])
				}
				args = args[1:]
			}
			if len(args) == 0 {
				return nil, bad("link wants KEY=VALUE impairments")
			}
			for _, kv := range args {
				for _, im := range dirs {
					if err := setImpairment(im, kv); err != nil {
						return nil, bad("%v", err)
					}
				}
			}
		case "sysctl":
			hosts := []string{"A", "B"}
			if len(args) == 2 {
				if !isHost(args[0]) {
					return nil, bad("sysctl host %q: want A or B", args[0])
				}
				hosts, args = args[:1], args[1:]
			}
			if len(args) != 1 || !strings.Contains(args[0], "=") {
				return nil, bad("sysctl wants [HOST] NAME=VALUE")
			}
			cfg := tcp.DefaultConfig()
			if err := ApplySysctls(&cfg, args); err != nil {
				return nil, bad("%v", err)
			}
			for _, h := range hosts {
				sysctls[h] = append(sysctls[h], args[0])
			}
		case "listen":
			if len(args) < 3 || !isHost(args[0]) {
				return nil, bad("listen wants HOST PORT APP [fastopen]")
			}
			host := args[0]
			port, err := strconv.ParseUint(args[1], 10, 16)
			if err != nil || port == 0 {
				return nil, bad("listen port %q", args[1])
			}
			rest := args[3:]
			var app func() Handler
			switch args[2] {
			case "echo":
				app = Echo
			case "discard":
				app = Discard
			case "http":
				if len(rest) == 0 {
					return nil, bad("http wants the body size in bytes")
				}
				size, err := strconv.Atoi(rest[0])
				if err != nil || size < 0 || size > 1<<30 {
					return nil, bad("http body size %q", rest[0])
				}
				rest = rest[1:]
				app = func() Handler { return HTTPServer(size) }
			default:
				return nil, bad("listen app %q: want echo, discard or http BYTES", args[2])
			}
			tfo := false
			if len(rest) == 1 && rest[0] == "fastopen" {
				tfo, rest = true, nil
			}
			if len(rest) != 0 {
				return nil, bad("listen: unexpected %q", strings.Join(rest, " "))
			}
			starts = append(starts, func(e *Env) {
				h := e.host(host)
				if tfo {
					h.ListenFastOpen(uint16(port), app())
				} else {
					h.Listen(uint16(port), app())
				}
			})
		case "drop", "hold":
			rule, err := parseRule(f[0], args)
			if err != nil {
				return nil, bad("%v", err)
			}
			starts = append(starts, func(e *Env) { e.Sim.AddDropRule(rule(e)) })
		case "at":
			if len(args) < 3 || !isHost(args[1]) {
				return nil, bad("at wants TIME HOST ACTION")
			}
			t, err := time.ParseDuration(args[0])
			if err != nil || t < 0 {
				return nil, bad("at time %q", args[0])
			}
			act, err := parseAction(args[1], args[2:])
			if err != nil {
				return nil, bad("%v", err)
			}
			starts = append(starts, func(e *Env) { e.Sim.At(t, func() { act(e) }) })
		default:
			return nil, bad("unknown directive %q", f[0])
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	if len(starts) == 0 {
		return nil, fmt.Errorf("scenario %s: nothing to run (no listen, drop or at line)", name)
	}
	if len(sysctls) > 0 {
		tunes = append(tunes, func(e *Env) {
			for h, list := range sysctls {
				ApplySysctls(&e.host(h).Config, list) // checked while parsing
			}
		})
	}
	sc.Tune = func(e *Env) {
		for _, f := range tunes {
			f(e)
		}
	}
	sc.Start = func(e *Env) {
		for _, f := range starts {
			f(e)
		}
	}
	return sc, nil
}

func isHost(s string) bool { return s == "A" || s == "B" }

const httpRequest = "GET / HTTP/1.0\r\n\r\n"

// payload is the data of a write: "request" or a byte count (filler).
func payload(arg string) ([]byte, error) {
	if arg == "request" {
		return []byte(httpRequest), nil
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > 64<<20 {
		return nil, fmt.Errorf("data %q: want a byte count (1 to 64 MiB) or request", arg)
	}
	return filler(n), nil
}

func (e *Env) host(name string) *Host {
	if name == "B" {
		return e.B
	}
	return e.A
}

func (e *Env) peer(name string) *Host {
	if name == "B" {
		return e.A
	}
	return e.B
}

func duration(args []string, i int) (time.Duration, error) {
	if len(args) <= i {
		return 0, errors.New("missing duration")
	}
	return time.ParseDuration(args[i])
}

func setImpairment(im *Impairment, kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("link impairment %q: want KEY=VALUE", kv)
	}
	switch k {
	case "delay", "jitter":
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > time.Hour {
			return fmt.Errorf("link %s %q: want a duration up to 1h", k, v)
		}
		if k == "delay" {
			im.Delay = d
		} else {
			im.Jitter = d
		}
	case "loss", "reorder", "duplicate", "corrupt":
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || !(p >= 0 && p <= 1) {
			return fmt.Errorf("link %s %q: want a probability between 0 and 1", k, v)
		}
		switch k {
		case "loss":
			im.Loss = p
		case "reorder":
			im.Reorder = p
		case "duplicate":
			im.Duplicate = p
		default:
			im.Corrupt = p
		}
	case "rate", "queue":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || (k == "queue" && n > 1<<20) {
			return fmt.Errorf("link %s %q: want a non-negative number", k, v)
		}
		if k == "rate" {
			im.RateBps = n
		} else {
			im.QueueLen = int(n)
		}
	default:
		return fmt.Errorf("link impairment %q: want delay, jitter, loss, reorder, duplicate, corrupt, rate or queue", k)
	}
	return nil
}

// parseRule parses "drop HOST WHAT [N|T]" and "hold HOST data N D".
func parseRule(verb string, args []string) (func(e *Env) *DropRule, error) {
	if len(args) < 2 || !isHost(args[0]) {
		return nil, fmt.Errorf("%s wants HOST and what to %s", verb, verb)
	}
	host, what, rest := args[0], args[1], args[2:]
	nth := func() (int, error) {
		if len(rest) < 1 {
			return 0, fmt.Errorf("%s %s wants N", verb, what)
		}
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s %s %q: want a number from 1", verb, what, rest[0])
		}
		return n, nil
	}
	want := func(k int) error {
		if len(rest) != k {
			return fmt.Errorf("%s %s: wrong number of arguments", verb, what)
		}
		return nil
	}
	if verb == "hold" {
		if what != "data" || want(2) != nil {
			return nil, errors.New("hold wants HOST data N DURATION")
		}
		n, err := nth()
		if err != nil {
			return nil, err
		}
		d, err := duration(rest, 1)
		if err != nil || d <= 0 || d > time.Hour {
			return nil, errors.New("hold duration: want a positive duration up to 1h")
		}
		return func(*Env) *DropRule { return HoldNthData(host, n, d) }, nil
	}
	switch what {
	case "syn", "synack", "syn-retransmissions", "after-handshake":
		if err := want(0); err != nil {
			return nil, err
		}
		return func(*Env) *DropRule {
			switch what {
			case "syn":
				return DropSYNs(host)
			case "synack":
				return DropSYNACKs(host)
			case "syn-retransmissions":
				return DropSYNRetransmissions(host)
			}
			return DropAfterHandshake(host)
		}, nil
	case "packet", "data":
		if err := want(1); err != nil {
			return nil, err
		}
		n, err := nth()
		if err != nil {
			return nil, err
		}
		if what == "packet" {
			return func(*Env) *DropRule { return DropNth(host, n) }, nil
		}
		return func(*Env) *DropRule { return DropNthData(host, n) }, nil
	case "after":
		if err := want(1); err != nil {
			return nil, err
		}
		t, err := time.ParseDuration(rest[0])
		if err != nil || t < 0 {
			return nil, fmt.Errorf("drop after %q: want a time", rest[0])
		}
		return func(e *Env) *DropRule { return e.Sim.DropAfter(host, t) }, nil
	}
	return nil, fmt.Errorf("drop %q: want syn, synack, syn-retransmissions, after-handshake, packet N, data N or after T", what)
}

// parseAction parses the ACTION of an "at" line.
func parseAction(host string, a []string) (func(e *Env), error) {
	verb, rest := a[0], a[1:]
	latest := func(e *Env) *Conn {
		h := e.host(host)
		if len(h.all) == 0 {
			h.note(verb + ": no connection")
			return nil
		}
		return h.all[len(h.all)-1]
	}
	on := func(f func(c *Conn)) func(e *Env) {
		return func(e *Env) {
			if c := latest(e); c != nil && c.tc != nil {
				f(c)
			}
		}
	}
	want := func(k int) error {
		if len(rest) != k {
			return fmt.Errorf("%s: wrong number of arguments", verb)
		}
		return nil
	}
	switch verb {
	case "connect":
		if len(rest) < 1 || len(rest) > 3 {
			return nil, errors.New("connect wants PORT [fastopen] [BYTES|request]")
		}
		port, err := strconv.ParseUint(rest[0], 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("connect port %q", rest[0])
		}
		rest = rest[1:]
		tfo := len(rest) > 0 && rest[0] == "fastopen"
		if tfo {
			rest = rest[1:]
		}
		var data []byte
		if len(rest) == 1 {
			if data, err = payload(rest[0]); err != nil {
				return nil, err
			}
		} else if len(rest) > 1 {
			return nil, fmt.Errorf("connect: unexpected %q", strings.Join(rest, " "))
		}
		return func(e *Env) {
			h := e.host(host)
			remote := netip.AddrPortFrom(e.peer(host).Addr, uint16(port))
			client := Handler{OnEOF: func(c *Conn) { c.Close() }}
			var c *Conn
			if tfo {
				c = h.DialFastOpen(remote, client, data)
			} else {
				c = h.Dial(remote, client)
				if len(data) > 0 {
					c.Write(data)
				}
			}
			if host == "A" && e.Client == nil {
				e.Client = c
			}
		}, nil
	case "write":
		if err := want(1); err != nil {
			return nil, err
		}
		data, err := payload(rest[0])
		if err != nil {
			return nil, err
		}
		return on(func(c *Conn) { c.Write(data) }), nil
	case "request":
		if err := want(0); err != nil {
			return nil, err
		}
		return on(func(c *Conn) { c.Write([]byte(httpRequest)) }), nil
	case "close", "shutdown", "abort", "pause", "resume":
		if err := want(0); err != nil {
			return nil, err
		}
		return on(func(c *Conn) {
			switch verb {
			case "close":
				c.Close()
			case "shutdown":
				c.CloseWrite()
			case "abort":
				c.Abort()
			case "pause":
				c.PauseReading(true)
			default:
				c.PauseReading(false)
			}
		}), nil
	case "keepalive":
		if err := want(1); err != nil || (rest[0] != "on" && rest[0] != "off") {
			return nil, errors.New("keepalive wants on or off")
		}
		on1 := rest[0] == "on"
		return on(func(c *Conn) { c.SetKeepAlive(on1) }), nil
	case "user-timeout":
		if err := want(1); err != nil {
			return nil, err
		}
		d, err := time.ParseDuration(rest[0])
		if err != nil || d < 0 {
			return nil, fmt.Errorf("user-timeout %q", rest[0])
		}
		return on(func(c *Conn) { c.SetUserTimeout(d) }), nil
	}
	return nil, fmt.Errorf("unknown action %q", verb)
}
