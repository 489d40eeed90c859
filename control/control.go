// Package control is a local control socket for programs that embed a
// ustack Stack: a Unix socket on which each request is one JSON line and
// each response one JSON line. It answers "connections" (like `ss -ti`) and
// "stats" (the MIB counters with Linux names, like `nstat`). The `ustack ss`
// and `ustack stat` commands are its clients.
//
//	go control.Serve(ctx, "/run/myapp.ustack", stack)
//	conns, err := control.Connections("/run/myapp.ustack")
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/tcp"
)

// Source is what a control server reports on; *ustack.Stack is one.
type Source interface {
	Connections() []ustack.ConnInfo
	Stats() ustack.Stats
}

// Request is one request line: {"cmd":"connections"} or {"cmd":"stats"}.
type Request struct {
	Cmd string `json:"cmd"`
}

// Response is one response line. Error is set when the request failed.
type Response struct {
	Connections []Conn    `json:"connections,omitempty"`
	Stats       []Counter `json:"stats,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// Conn is one connection or listener, with the tcp_info fields `ss -ti`
// shows. Times are in milliseconds, cwnd and ssthresh in packets.
type Conn struct {
	Local        string  `json:"local"`
	Remote       string  `json:"remote,omitempty"` // empty for listeners
	State        string  `json:"state"`            // ss names: ESTAB, LISTEN, TIME-WAIT, ...
	RecvQ        int     `json:"recv_q"`
	SendQ        int     `json:"send_q"`
	CAState      string  `json:"ca_state,omitempty"`
	RTO          float64 `json:"rto_ms,omitempty"`
	RTT          float64 `json:"rtt_ms,omitempty"`
	RTTVar       float64 `json:"rttvar_ms,omitempty"`
	MinRTT       float64 `json:"minrtt_ms,omitempty"`
	MSS          int     `json:"mss,omitempty"`
	Cwnd         int     `json:"cwnd,omitempty"`
	Ssthresh     int     `json:"ssthresh,omitempty"` // 0 = infinite (not yet set)
	Unacked      int     `json:"unacked,omitempty"`
	Retrans      int     `json:"retrans,omitempty"`       // retransmitted packets still unacked
	TotalRetrans int     `json:"total_retrans,omitempty"` // all retransmissions
	Lost         int     `json:"lost,omitempty"`
	Sacked       int     `json:"sacked,omitempty"`
	BytesSent    uint64  `json:"bytes_sent,omitempty"`
	BytesAcked   uint64  `json:"bytes_acked,omitempty"`
	BytesRecv    uint64  `json:"bytes_received,omitempty"`
	BytesRetrans uint64  `json:"bytes_retrans,omitempty"`
	SegsOut      uint64  `json:"segs_out,omitempty"`
	SegsIn       uint64  `json:"segs_in,omitempty"`
	SndWnd       int     `json:"snd_wnd,omitempty"`
	RcvWnd       int     `json:"rcv_wnd,omitempty"`
	PacingRate   int64   `json:"pacing_rate,omitempty"`   // bytes/s
	DeliveryRate int64   `json:"delivery_rate,omitempty"` // bytes/s

	// The congestion controller's view (tcp.Info.CC): its name, and for
	// BBR its state, bandwidth estimate (bytes/s), min RTT, gains and
	// inflight bounds (packets, 0 = unset), like ss's bbr:(...) field.
	CC         string  `json:"cc,omitempty"`
	CCState    string  `json:"cc_state,omitempty"`
	BwEstimate int64   `json:"bw_estimate,omitempty"` // bytes/s
	BwLo       int64   `json:"bw_lo,omitempty"`       // bytes/s, BBR's loss-driven bound, 0 = unset
	CCMinRTT   float64 `json:"cc_minrtt_ms,omitempty"`
	PacingGain float64 `json:"pacing_gain,omitempty"`
	CwndGain   float64 `json:"cwnd_gain,omitempty"`
	InflightHi int     `json:"inflight_hi,omitempty"`
	InflightLo int     `json:"inflight_lo,omitempty"`
}

// Counter is one MIB counter named like nstat does: the /proc/net/snmp or
// /proc/net/netstat row name followed by the field, e.g. TcpActiveOpens,
// TcpExtTCPFastRetrans, IpInReceives, IcmpInEchos, Icmp6InEchos.
type Counter struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

var ssState = map[tcp.State]string{
	tcp.Established: "ESTAB", tcp.SynSent: "SYN-SENT", tcp.SynReceived: "SYN-RECV",
	tcp.FinWait1: "FIN-WAIT-1", tcp.FinWait2: "FIN-WAIT-2", tcp.TimeWait: "TIME-WAIT",
	tcp.Closed: "UNCONN", tcp.CloseWait: "CLOSE-WAIT", tcp.LastAck: "LAST-ACK",
	tcp.Listen: "LISTEN", tcp.Closing: "CLOSING",
}

func msec(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ConnsOf converts the stack's connection list to the wire form.
func ConnsOf(list []ustack.ConnInfo) []Conn {
	out := make([]Conn, 0, len(list))
	for _, ci := range list {
		st := ssState[ci.State]
		if st == "" {
			st = ci.State.String()
		}
		c := Conn{Local: ci.Local.String(), State: st, RecvQ: ci.RecvQ, SendQ: ci.SendQ}
		if ci.Remote.IsValid() {
			c.Remote = ci.Remote.String()
		}
		if ci.State != tcp.Listen {
			i := &ci.Info
			c.CAState = i.CAState.String()
			c.RTO, c.RTT, c.RTTVar, c.MinRTT = msec(i.RTO), msec(i.RTT), msec(i.RTTVar), msec(i.MinRTT)
			c.MSS, c.Cwnd = i.SndMSS, i.SndCwnd
			if i.SndSsthresh > 0 && i.SndSsthresh < 1<<30 {
				c.Ssthresh = i.SndSsthresh
			}
			c.Unacked, c.Retrans, c.TotalRetrans, c.Lost, c.Sacked = i.Unacked, i.Retrans, i.TotalRetrans, i.Lost, i.Sacked
			c.BytesSent, c.BytesAcked, c.BytesRecv, c.BytesRetrans = i.BytesSent, i.BytesAcked, i.BytesReceived, i.BytesRetrans
			c.SegsOut, c.SegsIn = i.SegsOut, i.SegsIn
			c.SndWnd, c.RcvWnd = i.SndWnd, i.RcvWnd
			c.PacingRate, c.DeliveryRate = i.PacingRate, i.DeliveryRate
			c.CC, c.CCState, c.BwEstimate, c.CCMinRTT = i.CC.Name, i.CC.State, i.CC.BwEstimate, msec(i.CC.MinRTT)
			c.BwLo = i.CC.BwLo
			c.PacingGain, c.CwndGain, c.InflightHi, c.InflightLo = i.CC.PacingGain, i.CC.CwndGain, i.CC.InflightHi, i.CC.InflightLo
		}
		out = append(out, c)
	}
	return out
}

// tcpRow are the fields of the Linux "Tcp:" row of /proc/net/snmp; every
// other TCP counter belongs to "TcpExt:".
var tcpRow = map[string]bool{
	"ActiveOpens": true, "PassiveOpens": true, "AttemptFails": true, "EstabResets": true,
	"CurrEstab": true, "InSegs": true, "OutSegs": true, "RetransSegs": true, "InErrs": true,
	"OutRsts": true, "InCsumErrors": true,
}

// ipExtRow are IP counters Linux keeps in "IpExt:".
var ipExtRow = map[string]bool{"InCsumErrors": true}

// CountersOf flattens a Stats snapshot into nstat-named counters, in the
// order of the Stats fields.
func CountersOf(st ustack.Stats) []Counter {
	var out []Counter
	add := func(prefix func(string) string, v reflect.Value) {
		var walk func(v reflect.Value)
		walk = func(v reflect.Value) {
			t := v.Type()
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				fv := v.Field(i)
				if f.Anonymous && fv.Kind() == reflect.Struct {
					walk(fv)
					continue
				}
				if !f.IsExported() {
					continue
				}
				var n uint64
				switch fv.Kind() {
				case reflect.Uint64, reflect.Uint32, reflect.Uint:
					n = fv.Uint()
				case reflect.Int64, reflect.Int32, reflect.Int:
					n = uint64(max(fv.Int(), 0))
				default:
					continue
				}
				out = append(out, Counter{Name: prefix(f.Name) + f.Name, Value: n})
			}
		}
		walk(v)
	}
	add(func(n string) string {
		if ipExtRow[n] {
			return "IpExt"
		}
		return "Ip"
	}, reflect.ValueOf(st.IP))
	add(func(string) string { return "Icmp" }, reflect.ValueOf(st.ICMP))
	add(func(string) string { return "Icmp6" }, reflect.ValueOf(st.ICMP6))
	add(func(n string) string {
		if tcpRow[n] {
			return "Tcp"
		}
		return "TcpExt"
	}, reflect.ValueOf(st.TCP))
	// The stack's own fields shadow promoted engine fields of the same
	// name (e.g. InCsumErrors): keep the last (outer) one, in first place.
	dedup := out[:0]
	idx := map[string]int{}
	for _, c := range out {
		if i, ok := idx[c.Name]; ok {
			dedup[i] = c
			continue
		}
		idx[c.Name] = len(dedup)
		dedup = append(dedup, c)
	}
	return dedup
}

// Server serves one control socket.
type Server struct {
	src Source
	ln  net.Listener
	wg  sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	path   string
}

// Listen creates the Unix socket at path (replacing a stale socket file
// left by a previous run) for src. Call Serve to answer requests.
func Listen(path string, src Source) (*Server, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: %s: a server is already listening", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	// Only the owner may connect (the answers describe every connection).
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return &Server{src: src, ln: ln, conns: map[net.Conn]bool{}, path: path}, nil
}

// Addr is the socket path.
func (s *Server) Addr() string { return s.path }

// Serve answers requests until Close; it then returns net.ErrClosed.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return net.ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return net.ErrClosed
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

// Close stops the server, closes its client connections, waits for their
// handlers and removes the socket file.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close() // removes the socket file (net.UnixListener unlinks)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// maxRequest bounds one request line.
const maxRequest = 4096

func (s *Server) handle(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 512), maxRequest)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req Request
		var resp Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			resp = s.answer(req)
		}
		if err := enc.Encode(&resp); err != nil {
			return
		}
	}
}

func (s *Server) answer(req Request) Response {
	switch req.Cmd {
	case "connections", "ss":
		return Response{Connections: ConnsOf(s.src.Connections())}
	case "stats", "nstat":
		return Response{Stats: CountersOf(s.src.Stats())}
	default:
		return Response{Error: fmt.Sprintf("unknown command %q (want \"connections\" or \"stats\")", req.Cmd)}
	}
}

// Serve runs a control server for src at path until ctx is done, then
// closes it and removes the socket. It returns nil after ctx ends.
func Serve(ctx context.Context, path string, src Source) error {
	srv, err := Listen(path, src)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	select {
	case <-ctx.Done():
		srv.Close()
		<-done
		return nil
	case err := <-done:
		srv.Close()
		return err
	}
}

// Query sends one request to the server at path and returns its response.
// A response carrying an error is returned as an error.
func Query(ctx context.Context, path, cmd string) (*Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if err := json.NewEncoder(c).Encode(Request{Cmd: cmd}); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	var resp Response
	dec := json.NewDecoder(bufio.NewReader(c))
	if err := dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("control: reading response: %w", err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("control: %s", resp.Error)
	}
	return &resp, nil
}

// Connections asks the server at path for its connections.
func Connections(ctx context.Context, path string) ([]Conn, error) {
	r, err := Query(ctx, path, "connections")
	if err != nil {
		return nil, err
	}
	return r.Connections, nil
}

// Stats asks the server at path for its counters.
func Stats(ctx context.Context, path string) ([]Counter, error) {
	r, err := Query(ctx, path, "stats")
	if err != nil {
		return nil, err
	}
	return r.Stats, nil
}
