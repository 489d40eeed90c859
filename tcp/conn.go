// Package tcp is ustack's sans-IO TCP engine.
//
// A connection is a value (*Conn). It never starts goroutines, takes locks,
// reads clocks or touches sockets: the caller feeds it segments (Input),
// timer events (Timeout) and user calls (Send, Recv, CloseWrite, Close,
// Abort), always passing the current time, and collects the segments it
// wants to transmit with Output. Given the same inputs the engine behaves
// identically, which makes it testable on a virtual clock.
package tcp

import (
	"net/netip"
	"time"

	"github.com/ustack/ustack/wire"
)

// Segment is one TCP segment as seen by the engine. Addresses and ports are
// the stack's business (see Tuple).
type Segment struct {
	Seq, Ack uint32
	Flags    uint8  // wire.TCPFlag* values
	Window   uint16 // raw field as on the wire (unscaled)
	Urgent   uint16
	Options  wire.TCPOptions
	// Payload: on Input it is valid only during the call; on Output it is
	// valid until the next call on the Conn.
	Payload []byte
}

// Len is the sequence space the segment occupies (payload plus SYN and FIN).
func (s *Segment) Len() uint32 {
	n := uint32(len(s.Payload))
	if s.Flags&wire.TCPFlagSYN != 0 {
		n++
	}
	if s.Flags&wire.TCPFlagFIN != 0 {
		n++
	}
	return n
}

// Tuple identifies a connection.
type Tuple struct{ Local, Remote netip.AddrPort }

// State is a RFC 9293 connection state.
type State int

// Connection states.
const (
	Closed State = iota
	Listen
	SynSent
	SynReceived
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
)

var stateNames = [...]string{
	Closed:      "CLOSED",
	Listen:      "LISTEN",
	SynSent:     "SYN-SENT",
	SynReceived: "SYN-RECEIVED",
	Established: "ESTABLISHED",
	FinWait1:    "FIN-WAIT-1",
	FinWait2:    "FIN-WAIT-2",
	CloseWait:   "CLOSE-WAIT",
	Closing:     "CLOSING",
	LastAck:     "LAST-ACK",
	TimeWait:    "TIME-WAIT",
}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// Conn is one TCP connection: a sans-IO state machine.
type Conn struct {
	cfg   *Config
	tuple Tuple
	state State
	err   error
	ctr   *Counters
}

// NewActive returns a connection in SYN-SENT that will emit its SYN from
// the next Output call. iss is the initial send sequence number (see ISN).
func NewActive(cfg *Config, t Tuple, iss uint32, now time.Time) *Conn {
	return &Conn{cfg: cfg, tuple: t, state: SynSent}
}

// NewPassive returns a connection in SYN-RECEIVED created from the SYN a
// listener received; the SYN-ACK comes out of the next Output call. It
// returns an error if syn is not an acceptable SYN.
func NewPassive(cfg *Config, t Tuple, iss uint32, syn *Segment, now time.Time) (*Conn, error) {
	return &Conn{cfg: cfg, tuple: t, state: SynReceived}, nil
}

// Input processes one received segment.
func (c *Conn) Input(seg *Segment, now time.Time) {}

// Timeout runs the timers that are due at now. Call it at or after Deadline.
func (c *Conn) Timeout(now time.Time) {}

// Deadline returns when Timeout must next be called; zero means no timer
// is pending.
func (c *Conn) Deadline() time.Time { return time.Time{} }

// Output emits every segment ready to go now. The *Segment passed to emit
// and its Payload are valid only until emit returns... see Segment.
func (c *Conn) Output(now time.Time, emit func(*Segment)) {}

// Send copies p into the send buffer and returns how much fit.
func (c *Conn) Send(p []byte) (int, error) { return 0, nil }

// Recv reads in-order received data; io.EOF after the peer's FIN.
func (c *Conn) Recv(p []byte) (int, error) { return 0, nil }

// Readable returns the number of bytes Recv can return now.
func (c *Conn) Readable() int { return 0 }

// Writable returns the number of bytes Send can accept now.
func (c *Conn) Writable() int { return 0 }

// CloseWrite queues a FIN after the data already queued (shutdown(SHUT_WR)).
func (c *Conn) CloseWrite() error { return nil }

// Close closes the connection fully. Like Linux, if received data is still
// unread it resets the connection instead of sending a FIN.
func (c *Conn) Close() error { return nil }

// Abort resets the connection: a RST comes out of the next Output.
func (c *Conn) Abort() {}

// State returns the connection state.
func (c *Conn) State() State { return c.state }

// Err returns the error that ended the connection (syscall.ETIMEDOUT,
// ECONNRESET or ECONNREFUSED), nil otherwise.
func (c *Conn) Err() error { return c.err }

// Info returns a tcp_info-like snapshot.
func (c *Conn) Info() Info { return Info{State: c.state} }

// SetCounters makes the connection count into ctr (nil: no counting).
func (c *Conn) SetCounters(ctr *Counters) { c.ctr = ctr }

// SetMTU sets the MSS advertised (and the largest we send) from the
// path MTU of the route: MTU minus IP and TCP headers (40 for IPv4, 60 for
// IPv6). Call it right after NewActive/NewPassive, before the first Output.
func (c *Conn) SetMTU(mtu int) {}

// SetNoDelay turns Nagle's algorithm off (true) or on (TCP_NODELAY).
func (c *Conn) SetNoDelay(noDelay bool) {}

// SetKeepAlive turns keepalive probes on or off (SO_KEEPALIVE).
func (c *Conn) SetKeepAlive(on bool) {}

// SetKeepAliveParams sets idle time (TCP_KEEPIDLE), probe interval
// (TCP_KEEPINTVL) and probe count (TCP_KEEPCNT); zero or negative values
// keep the current setting (initially the Config's sysctls).
func (c *Conn) SetKeepAliveParams(idle, interval time.Duration, count int) {}

// SetUserTimeout sets TCP_USER_TIMEOUT (0 = off).
func (c *Conn) SetUserTimeout(d time.Duration) {}

// SetReadBuffer sets the receive buffer size (SO_RCVBUF, bytes).
func (c *Conn) SetReadBuffer(n int) {}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF, bytes).
func (c *Conn) SetWriteBuffer(n int) {}

// SetChallengeACKLimiter installs the stack-wide challenge-ACK limiter
// (net.ipv4.tcp_challenge_ack_limit). allow is called before each challenge
// ACK and returns false to suppress it. nil means no global limit.
func (c *Conn) SetChallengeACKLimiter(allow func(now time.Time) bool) {}
