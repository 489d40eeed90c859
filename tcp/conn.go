// Package tcp is ustack's sans-IO TCP engine.
//
// A connection is a value (*Conn). It never starts goroutines, takes locks,
// reads clocks or touches sockets: the caller feeds it segments (Input),
// timer events (Timeout) and user calls (Send, Recv, CloseWrite, Close,
// Abort), always passing the current time, and collects the segments it
// wants to transmit with Output. Given the same inputs the engine behaves
// identically, which makes it testable on a virtual clock.
//
// Driving a Conn: after every Input, Timeout or user call, call Output to
// collect the segments to send, then re-arm a timer for Deadline (zero: no
// timer). A Conn in state Closed may still emit a final RST from Output;
// after that it can be forgotten. A *Conn is not safe for concurrent use.
//
// Behaviour follows RFC 9293 with Linux's choices where they differ:
//
//   - Handshake: MSS, window scale (shift clamped to 14; SYN windows never
//     scaled), SACK-permitted and timestamps (per-connection offset) are
//     negotiated. SYN and SYN-ACK are retransmitted with a 1 s initial RTO
//     doubling (tcp_syn_retries / tcp_synack_retries, with optional
//     tcp_syn_linear_timeouts); giving up closes with ETIMEDOUT.
//   - Segment arrival: Linux's acceptability test (the segment must end at
//     or after the last ACK sent and start within the window), PAWS, RFC
//     5961 (exact-match RST, challenge ACKs for in-window RST and SYN and
//     for ACKs outside [SND.UNA-MAX.SND.WND, SND.NXT]), per-connection
//     tcp_invalid_ratelimit plus a stack-wide hook, RFC 1337 when enabled.
//   - Data: send buffer with zero-copy payload slices, receive buffer with
//     auto-tuning, out-of-order queue capped at the receive buffer, SACK
//     and D-SACK blocks, receiver SWS avoidance, Nagle (SetNoDelay), Linux
//     delayed ACKs (quick-ACK at start and after idle, ACK every second
//     full-sized segment, 40 ms timer, interactive ping-pong mode in which
//     replies carry the ACKs) and window updates on read.
//   - TCP Fast Open (RFC 7413): SetFastOpen on the client puts a cookie
//     (or a cookie request) and the queued data in the SYN; ServerFastOpen
//     on the server grants cookies and makes valid-cookie SYN data readable
//     in SYN-RECEIVED; unacknowledged SYN data is sent again after the
//     handshake; options answered in the form received (kind 34 or 254).
//   - ECN (RFC 3168) with tcp_ecn 1/2/0; Segment.ECN carries the IP
//     codepoint, which the stack copies from and to the IP header.
//   - Timers: RFC 6298 RTO with Karn and timestamps, tcp_retries2 as time
//     (924.6 s), TCP_USER_TIMEOUT, keepalive (probes are bare ACKs with
//     SEQ=SND.UNA-1), TIME-WAIT, orphan FIN-WAIT-2 timeout. Zero-window
//     probing uses the Linux style: a bare ACK with SEQ=SND.UNA-1 (no data
//     byte) whose reply carries the current window; when some window is
//     open but less than the next segment, the probe sends the data that
//     fits. Probes back off exponentially up to RTOMax and the connection
//     is dropped after tcp_retries2 unanswered probes.
//   - Loss recovery: a retransmission queue with per-segment state
//     (SACKed, lost, retransmitted, delivery-rate snapshot), fast
//     retransmit after tcp_reordering duplicate ACKs, NewReno partial ACKs
//     without SACK, RFC 6675-style SACK recovery with PRR, RACK loss
//     detection (also for lost retransmissions), tail loss probes, undo of
//     spurious episodes (Eifel for RTOs, D-SACK), congestion control
//     through tcp/cc with a rate sample per ACK.
package tcp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/ustack/ustack/tcp/cc"
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
	// ECN is the IP ECN codepoint (RFC 3168): on Input the received
	// packet's (ECNCE = congestion experienced), on Output the one to send
	// (ECNECT0 on new data of an ECN-capable connection, 0 = Not-ECT).
	ECN uint8
	// Payload: on Input it is valid only during the call; on Output it is
	// valid until the next call on the Conn.
	Payload []byte
}

// IP ECN codepoints (the low two bits of the IPv4 TOS / IPv6 traffic class).
const (
	ECNNotECT = 0
	ECNECT1   = 1
	ECNECT0   = 2
	ECNCE     = 3
)

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

// txSeg is one entry of the retransmission queue: a range of sequence
// space that was sent, with its loss-recovery and rate-sampling state.
type txSeg struct {
	seq, end uint32 // [seq, end), FIN included when fin
	fin      bool
	sentAt   time.Time // last (re)transmission
	xmitN    uint64    // transmission order of the last (re)transmission
	retrans  bool      // ever retransmitted (Karn)
	rtxOut   bool      // retransmitted and not yet acked/sacked
	sacked   bool
	lost     bool

	// delivery-rate snapshot at (re)transmission
	delivered     int64
	deliveredTime time.Time
	firstTxTime   time.Time
	appLimited    bool
	txInFlight    int   // packets in flight when sent, including it
	lostSnap      int64 // lostTotal when sent
}

// oooSeg is a block of out-of-order data.
type oooSeg struct {
	seq  uint32
	data []byte
}

func (o *oooSeg) end() uint32 { return o.seq + uint32(len(o.data)) }

// pendingRST is a reset queued for Output.
type pendingRST struct {
	seq, ack uint32
	flags    uint8
	ts       bool // carry the timestamp option
}

// Conn is one TCP connection: a sans-IO state machine.
type Conn struct {
	cfg            *Config
	tuple          Tuple
	state          State
	err            error
	ctr            *Counters
	cc             cc.Controller
	challengeAllow func(now time.Time) bool
	memPressure    func() bool // stack-wide tcp_mem pressure, nil: never
	tr             *tracer     // nil: tracing off (SetTracer)
	passive        bool
	orphan         bool // Close was called: nobody reads any more

	// ccOwnsRecovery: the controller sets cwnd in fast recovery itself
	// (BBR, like Linux's cong_control hook); PRR's window is not used.
	ccOwnsRecovery bool

	// send sequence space
	iss, sndUna, sndNxt uint32
	sndWnd, maxSndWnd   uint32 // bytes (scaled)
	sndWl1, sndWl2      uint32
	sndWScale           uint8 // shift applied to the peer's window field
	rcvWScale           uint8 // shift applied to our window field
	wsOK, sackOK, tsOK  bool
	ccInit              bool
	isCwndLimited       bool
	peerMSS, advMSS     int
	sndMSS              int
	mtuSet              bool
	synEmitted          bool
	rcvBufLocked        bool
	dsackPending        bool
	ackNow              bool
	zeroWndAdv          bool
	tsRecentOK          bool
	keepOn              bool
	pathMSS             int

	// send buffer: byte with sequence number s is sbuf[sbufOff+int(s-sbufSeq)]
	sbuf         []byte
	sbufOff      int
	sbufSeq      uint32
	sndBufLimit  int
	sndBufLocked bool
	finQueued    bool // user shut down writing: FIN goes after the data
	finSent      bool
	finAcked     bool
	finSeq       uint32

	// retransmission queue
	rtx                                        []txSeg
	rtxHead                                    int
	packetsOut, sackedOut, lostOut, retransOut int

	// receive
	irs, rcvNxt, rcvAdv, rcvWup uint32
	rbuf                        []byte
	rbufOff                     int
	rcvBufCap                   int
	ooo                         []oooSeg
	oooBytes                    int
	rcvFin                      bool
	oooFin                      bool
	oooFinSeq                   uint32
	sackBlk                     [4]wire.SACKBlock
	nSack                       int
	dsack                       wire.SACKBlock
	rcvMSS                      int
	quick                       int
	pingpong                    bool      // interactive (ping-pong) delayed-ACK mode
	ecnOK                       bool      // ECN negotiated (RFC 3168)
	ecnEcho                     bool      // receiver: CE seen, ECE on our ACKs until CWR
	ecnCWR                      bool      // sender: CWR on the next new data segment
	ecnHigh                     uint32    // sender: no new ECE reaction before SND.UNA passes it
	lastRecv                    time.Time // any acceptable segment
	lastDataRecv                time.Time
	lastAckSentAt               time.Time
	rcvRTT                      time.Duration // receiver-side RTT estimate (from timestamps)
	rcvCopied                   int           // bytes read by the application in this measurement
	rcvSpace                    int           // bytes read in the last full measurement
	rcvSpaceAt                  time.Time

	// timestamps (RFC 7323)
	tsOffset   uint32
	tsRecent   uint32
	tsRecentAt time.Time

	// RTT / RTO
	rtt         RTTEstimator
	minRTT      time.Duration
	minRTTAt    time.Time
	lastRTT     time.Duration
	retransmits int       // consecutive timeouts (icsk_retransmits)
	rtxStamp    time.Time // Linux retrans_stamp
	synSentAt   time.Time
	synRetrans  int

	// timers (zero = off)
	rtoAt, persistAt, keepAt, delackAt, twAt, fw2At, paceAt time.Time
	paceEnd                                                 time.Time // when the data paced so far has left at the pacing rate

	// Output work
	sendSyn      bool
	rst          pendingRST
	rstPending   bool
	probeData    bool // persist timer: send the data that fits a small window
	sendProbe    bool // zero-window / keepalive probe: SEQ=SND.UNA-1
	forceRetrans bool // retransmit the first lost segment regardless of cwnd
	gotDSACK     bool
	undoMarker   bool
	undoEifel    bool
	probesOut    int
	probeStart   time.Time // first zero-window probe of this stall (TCP_USER_TIMEOUT)
	lastOOWAck   time.Time

	keepIdle    time.Duration
	keepIntvl   time.Duration
	keepCnt     int
	userTimeout time.Duration
	noDelay     bool

	// loss recovery
	caState       CAState
	dupacks       int
	recoverSeq    uint32
	highRxt       uint32
	reordering    int
	prr           cc.PRR
	tlpAt         time.Time
	tlpHigh       uint32
	tlpOut        bool
	tlpNew        bool
	tlpRetrans    bool
	tlpWasRetrans bool
	recoveryCwnd  int
	ackedThisAck  int
	// priorFlightSize is FlightSize (RFC 5681: packets sent and not
	// cumulatively acked, SACKed ones included) before the current ACK.
	priorFlightSize int
	undoRetrans     int
	undoTSVal       uint32
	rackEnd         uint32
	rackXmit        time.Time
	rackXmitN       uint64
	undoRanges      *[8]wire.SACKBlock // allocated on the first acked retransmission
	undoN           int
	xmitN           uint64
	rackRTT         time.Duration
	reoAt           time.Time

	// delivery-rate estimation
	delivered     int64
	deliveredTime time.Time
	firstTxTime   time.Time
	appLimited    int64
	deliveryRate  int64
	*ackScratch   // rate sample: only during processAck (pooled)
	lastSendTime  time.Time
	// Linux tcp_cwnd_validate state: was sending cwnd-limited in the
	// current window, and the most packets out in it.
	lostTotal     int64 // packets ever marked lost (for RateSample.LostSinceTx)
	maxPacketsOut int
	cwndUsageSeq  uint32
	ackedRetrans  bool

	// statistics
	bytesAcked, bytesReceived, bytesSent, bytesRetrans uint64
	segsOut, segsIn, dataSegsOut, dataSegsIn           uint64
	totalRetrans                                       int
	dsackDups                                          uint64
	lastDataSent, lastAckRecv                          time.Time

	tfo tfoState
	out *Segment  // reused for every emitted segment: only during Output (pooled)
	now time.Time // time of the latest call that passed one
}

func newConn(cfg *Config, t Tuple, iss uint32, now time.Time) *Conn {
	if cfg == nil {
		d := DefaultConfig()
		cfg = &d
	}
	c := &Conn{cfg: cfg, tuple: t, iss: iss}
	c.sndUna, c.sndNxt = iss, iss
	c.sbufSeq = iss + 1
	c.rtt = NewRTTEstimator(cfg)
	ctl, err := cc.New(cfg.CongestionControl)
	if err != nil {
		ctl, _ = cc.New("")
	}
	c.cc = ctl
	if o, ok := ctl.(cc.RecoveryCwndOwner); ok {
		c.ccOwnsRecovery = o.OwnsRecoveryCwnd()
	}
	c.noDelay = cfg.NoDelay
	c.userTimeout = cfg.UserTimeout
	c.keepIdle, c.keepIntvl, c.keepCnt = cfg.KeepaliveTime, cfg.KeepaliveIntvl, cfg.KeepaliveProbes
	c.reordering = cfg.Reordering
	if c.reordering <= 0 {
		c.reordering = 3
	}
	c.advMSS = 1460
	if t.Remote.Addr().Is6() && !t.Remote.Addr().Is4In6() {
		c.advMSS = 1440
	}
	c.rcvBufCap = cfg.RMem[1]
	if c.rcvBufCap <= 0 {
		c.rcvBufCap = 131072
	}
	c.sndBufLimit = cfg.WMem[1]
	if c.sndBufLimit <= 0 {
		c.sndBufLimit = 16384
	}
	if cfg.WindowScaling {
		maxBuf := max(cfg.RMem[2], cfg.RMemMax, c.rcvBufCap)
		for c.rcvWScale < 14 && maxBuf>>c.rcvWScale > 65535 {
			c.rcvWScale++
		}
	}
	if cfg.Timestamps == 1 {
		c.tsOffset = mix32(iss, uint32(t.Local.Port())<<16|uint32(t.Remote.Port()))
	}
	c.rcvMSS = min(536, c.advMSS)
	return c
}

// mix32 is a small deterministic hash (used for the per-connection
// timestamp offset: random-looking, but a function of the inputs).
func mix32(a, b uint32) uint32 {
	x := uint64(a)<<32 | uint64(b)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return uint32(x)
}

// NewActive returns a connection in SYN-SENT that will emit its SYN from
// the next Output call. iss is the initial send sequence number (see ISN).
// cfg is kept by reference and must not change while the Conn lives.
func NewActive(cfg *Config, t Tuple, iss uint32, now time.Time) *Conn {
	c := newConn(cfg, t, iss, now)
	c.state = SynSent
	c.sendSyn = true
	c.sndNxt = iss + 1
	c.synSentAt = now
	c.rtoAt = now.Add(c.cfg.RTOInitial)
	c.wsOK = c.cfg.WindowScaling
	c.sackOK = c.cfg.SACK
	c.tsOK = c.cfg.Timestamps != 0
	c.ecnOK = c.cfg.ECN == 1 // asked for in the SYN; confirmed by the SYN-ACK
	if !c.wsOK {
		c.rcvWScale = 0
	}
	c.count(func(k *Counters) { k.ActiveOpens++ })
	return c
}

// ErrBadSYN is returned by NewPassive for a segment that is not a plain SYN.
var ErrBadSYN = errors.New("tcp: not an acceptable SYN")

// NewPassive returns a connection in SYN-RECEIVED created from the SYN a
// listener received; the SYN-ACK comes out of the next Output call. It
// returns ErrBadSYN if syn is not an acceptable SYN (SYN set; ACK, RST and
// FIN clear). Data carried by the SYN is ignored (the peer retransmits
// it) unless Fast Open accepts it: see ServerFastOpen and AcceptSynData,
// called right after NewPassive while syn is still valid.
func NewPassive(cfg *Config, t Tuple, iss uint32, syn *Segment, now time.Time) (*Conn, error) {
	if syn == nil || syn.Flags&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST|wire.TCPFlagFIN) != wire.TCPFlagSYN {
		return nil, ErrBadSYN
	}
	c := newConn(cfg, t, iss, now)
	c.passive = true
	c.state = SynReceived
	c.sendSyn = true
	c.sndNxt = iss + 1
	c.synSentAt = now
	c.rtoAt = now.Add(c.cfg.RTOInitial)
	c.acceptSYN(syn, now)
	c.tfo.peerExp = syn.Options.HasFastOpen && syn.Options.FastOpenExp
	// ECN setup SYN (ECE and CWR, itself not ECT): accepted unless
	// tcp_ecn is 0 (Linux tcp_ecn_create_request).
	c.ecnOK = c.cfg.ECN != 0 && syn.Flags&(wire.TCPFlagECE|wire.TCPFlagCWR) == wire.TCPFlagECE|wire.TCPFlagCWR && syn.ECN == ECNNotECT
	c.count(func(k *Counters) { k.PassiveOpens++ })
	return c, nil
}

// acceptSYN records the peer's initial sequence number and options from a
// SYN or SYN-ACK.
func (c *Conn) acceptSYN(syn *Segment, now time.Time) {
	o := &syn.Options
	c.irs = syn.Seq
	c.rcvNxt = syn.Seq + 1
	c.rcvWup = c.rcvNxt
	c.rcvAdv = c.rcvNxt + c.synWindow()
	c.sndWnd = uint32(syn.Window) // SYN windows are never scaled
	c.maxSndWnd = c.sndWnd
	c.sndWl1, c.sndWl2 = syn.Seq, syn.Ack
	c.wsOK = c.cfg.WindowScaling && o.HasWScale
	if c.wsOK {
		c.sndWScale = min(o.WScale, 14)
	} else {
		c.sndWScale, c.rcvWScale = 0, 0
	}
	c.sackOK = c.cfg.SACK && o.SACKPermitted
	c.tsOK = c.cfg.Timestamps != 0 && o.HasTS
	if c.tsOK {
		c.tsRecent = o.TSVal
		c.tsRecentAt = now
		c.tsRecentOK = true
	}
	if o.HasMSS && o.MSS > 0 {
		c.peerMSS = int(o.MSS)
	} else if c.tuple.Remote.Addr().Is6() && !c.tuple.Remote.Addr().Is4In6() {
		c.peerMSS = 1220
	} else {
		c.peerMSS = 536
	}
	c.updateMSS()
	c.lastRecv = now
}

func (c *Conn) updateMSS() {
	m := c.advMSS
	if c.pathMSS > 0 && c.pathMSS < m {
		m = c.pathMSS
	}
	if c.peerMSS > 0 && c.peerMSS < m {
		m = c.peerMSS
	}
	// Linux clamps to tcp_min_snd_mss before taking off the option space.
	m = max(m, c.cfg.MinSndMSS, 48)
	if c.tsOK {
		m -= 12
	}
	c.sndMSS = m
	c.rcvMSS = min(c.rcvMSS, c.advMSS)
}

func (c *Conn) count(f func(*Counters)) {
	if c.ctr != nil {
		f(c.ctr)
	}
}

// synWindow is the window advertised in SYN and SYN-ACK (never scaled).
func (c *Conn) synWindow() uint32 {
	return uint32(min(c.rcvBufCap, 65535))
}

// Send copies p into the send buffer and returns how much fit (0 when the
// buffer is full; see Writable). Data can be queued in SYN-SENT and
// SYN-RECEIVED; it goes out once the connection is established.
func (c *Conn) Send(p []byte) (int, error) {
	switch c.state {
	case SynSent, SynReceived, Established, CloseWait:
	default:
		if c.err != nil {
			return 0, c.err
		}
		return 0, syscall.EPIPE
	}
	if c.finQueued {
		return 0, syscall.EPIPE
	}
	n := min(len(p), c.Writable())
	if n == 0 {
		return 0, nil
	}
	// Compact only when at least half of the buffer is acknowledged data,
	// so each byte is moved O(1) times; otherwise append grows capacity.
	if c.sbufOff > 0 && len(c.sbuf)+n > cap(c.sbuf) && 2*c.sbufOff >= len(c.sbuf) {
		m := copy(c.sbuf, c.sbuf[c.sbufOff:])
		c.sbuf = c.sbuf[:m]
		c.sbufOff = 0
	}
	c.sbuf = append(c.sbuf, p[:n]...)
	return n, nil
}

// sndQueued is the number of data bytes in the send buffer (unacked+unsent).
func (c *Conn) sndQueued() int { return len(c.sbuf) - c.sbufOff }

// BufferedBytes is the data the connection holds for the application:
// unread in-order bytes plus queued send bytes (unacked and unsent). The
// stack sums it for net.ipv4.tcp_mem; the out-of-order queue is not
// included.
func (c *Conn) BufferedBytes() int { return len(c.rbuf) + c.sndQueued() }

// dataEnd is the sequence number after the last queued data byte.
func (c *Conn) dataEnd() uint32 { return c.sbufSeq + uint32(c.sndQueued()) }

// Writable returns the number of bytes Send can accept now.
func (c *Conn) Writable() int {
	switch c.state {
	case SynSent, SynReceived, Established, CloseWait:
	default:
		return 0
	}
	if c.finQueued {
		return 0
	}
	return max(0, c.sndBufLimit-c.sndQueued())
}

// Recv reads in-order received data. It returns (0, nil) when nothing is
// available yet (see Readable), io.EOF after the peer's FIN once all data
// has been read, and the connection error after a reset or timeout.
func (c *Conn) Recv(p []byte) (int, error) {
	avail := len(c.rbuf)
	if avail == 0 {
		if c.rcvFin {
			return 0, io.EOF
		}
		if c.err != nil {
			return 0, c.err
		}
		if c.state == Closed {
			return 0, io.EOF
		}
		return 0, nil
	}
	n := c.rbufRead(p)
	c.autotuneRcvBuf(n)
	c.afterRead()
	return n, nil
}

// autotuneRcvBuf grows the receive buffer (Linux dynamic right-sizing,
// tcp_rcv_space_adjust): once per receiver RTT, if the application read
// more than in the previous RTT, the buffer becomes 4 times what it read
// (room for twice the data per RTT, doubling headroom), up to tcp_rmem[2].
func (c *Conn) autotuneRcvBuf(n int) {
	if !c.cfg.ModerateRcvbuf || c.rcvBufLocked {
		return
	}
	c.rcvCopied += n
	rtt := c.rcvRTT
	if rtt == 0 {
		rtt = c.rtt.SRTT()
	}
	if rtt == 0 {
		return
	}
	if c.rcvSpaceAt.IsZero() {
		c.rcvSpaceAt = c.now
		return
	}
	if c.now.Sub(c.rcvSpaceAt) < rtt {
		return
	}
	if c.rcvCopied > c.rcvSpace {
		c.rcvSpace = c.rcvCopied
		if want := min(4*c.rcvCopied, max(c.cfg.RMem[2], c.cfg.RMem[1])); want > c.rcvBufCap && !c.underMemoryPressure() {
			c.rcvBufCap = want
		}
	}
	c.rcvCopied = 0
	c.rcvSpaceAt = c.now
}

// afterRead sends a window update when reading opened the window a lot
// (Linux tcp_cleanup_rbuf).
func (c *Conn) afterRead() {
	switch c.state {
	case Established, FinWait1, FinWait2:
	default:
		return
	}
	cur := c.curRcvWnd()
	if 2*int(cur) <= c.rcvBufCap {
		if nw := c.selectWindow(false); nw > 0 && nw >= 2*cur && nw-cur >= uint32(c.rcvMSS) {
			c.ackNow = true
		}
	}
}

// Readable returns the number of bytes Recv can return now.
func (c *Conn) Readable() int { return len(c.rbuf) }

// CloseWrite queues a FIN after the data already queued (shutdown(SHUT_WR)).
// In SYN-SENT it closes the connection like Linux; in SYN-RECEIVED the FIN
// waits until the handshake completes.
func (c *Conn) CloseWrite() error {
	switch c.state {
	case SynSent:
		c.setClosed(nil)
		return nil
	case SynReceived:
		c.finQueued = true
	case Established:
		c.finQueued = true
		c.setState(FinWait1)
	case CloseWait:
		c.finQueued = true
		c.setState(LastAck)
	case Closed:
		if c.err != nil {
			return c.err
		}
		return net.ErrClosed
	}
	return nil
}

// Close closes the connection fully: the application will neither send nor
// read any more. Like Linux, if received data is still unread it resets the
// connection (RST) instead of sending a FIN; an orphaned connection in
// FIN-WAIT-2 lives at most tcp_fin_timeout.
func (c *Conn) Close() error {
	if c.state == Closed || c.state == TimeWait {
		c.orphan = true
		return nil
	}
	c.orphan = true
	if c.Readable() > 0 || c.oooBytes > 0 {
		c.count(func(k *Counters) { k.TCPAbortOnClose++ })
		c.Abort()
		return nil
	}
	if c.state == FinWait2 && c.fw2At.IsZero() {
		c.fw2At = c.nowHint().Add(c.cfg.FinTimeout)
	}
	return c.CloseWrite()
}

// Abort resets the connection: a RST comes out of the next Output (none in
// SYN-SENT, where the peer knows nothing about us yet).
func (c *Conn) Abort() {
	switch c.state {
	case Closed, TimeWait:
		c.setClosed(c.err)
		return
	case SynSent:
		c.setClosed(nil)
		return
	}
	c.queueActiveRST()
	c.setClosed(nil)
}

// State returns the connection state.
func (c *Conn) State() State { return c.state }

// Err returns the error that ended the connection (syscall.ETIMEDOUT,
// ECONNRESET or ECONNREFUSED), nil otherwise.
func (c *Conn) Err() error { return c.err }

// SetCounters makes the connection count into ctr (nil: no counting).
func (c *Conn) SetCounters(ctr *Counters) { c.ctr = ctr }

// SetMTU sets the path MTU: the MSS we send is at most MTU minus 40
// (IPv4) or 60 (IPv6) bytes of headers. Called before the SYN or SYN-ACK
// goes out (right after NewActive or NewPassive) it also sets the MSS we
// advertise. Called later with a smaller MTU (ICMP fragmentation needed /
// packet too big), segments in flight that no longer fit are split and
// retransmitted at once (Linux tcp_simple_retransmit), without a
// congestion-window reduction.
func (c *Conn) SetMTU(mtu int) {
	hdr := 40
	if c.tuple.Remote.Addr().Is6() && !c.tuple.Remote.Addr().Is4In6() {
		hdr = 60
	}
	m := mtu - hdr
	if m < 88 {
		return
	}
	if !c.synEmitted {
		c.advMSS = m
	}
	c.pathMSS = m
	c.mtuSet = true
	if c.peerMSS > 0 {
		old := c.sndMSS
		c.updateMSS()
		if c.sndMSS < old && synchronized(c.state) {
			c.resegment()
		}
	}
}

// resegment splits queued segments larger than the send MSS and marks them
// lost so that Output retransmits them at the new size.
func (c *Conn) resegment() {
	q := c.rtxQ()
	need := false
	for i := range q {
		if !q[i].sacked && c.segDataLen(&q[i]) > c.sndMSS {
			need = true
			break
		}
	}
	if !need {
		return
	}
	nq := make([]txSeg, 0, len(q)*2)
	for _, s := range q {
		dl := c.segDataLen(&s)
		if s.sacked || dl <= c.sndMSS {
			nq = append(nq, s)
			continue
		}
		if s.lost {
			c.lostOut--
		}
		if s.rtxOut {
			c.retransOut--
		}
		c.packetsOut--
		for off := 0; off < dl; off += c.sndMSS {
			p := s
			p.seq = s.seq + uint32(off)
			p.end = p.seq + uint32(min(c.sndMSS, dl-off))
			p.fin = false
			if off+c.sndMSS >= dl && s.fin {
				p.fin = true
				p.end++
			}
			p.lost, p.rtxOut = true, false
			c.lostOut++
			c.lostTotal++
			c.packetsOut++
			nq = append(nq, p)
		}
	}
	c.rtx, c.rtxHead = nq, 0
	if c.caState != CALoss {
		c.caState = CALoss
		c.recoverSeq = c.sndNxt
	}
	c.forceRetrans = true
}

func (c *Conn) segDataLen(s *txSeg) int {
	n := int(s.end - s.seq)
	if s.fin {
		n--
	}
	return n
}

// SetNoDelay turns Nagle's algorithm off (true) or on (TCP_NODELAY).
func (c *Conn) SetNoDelay(noDelay bool) { c.noDelay = noDelay }

// SetKeepAlive turns keepalive probes on or off (SO_KEEPALIVE).
func (c *Conn) SetKeepAlive(on bool) {
	c.keepOn = on
	c.keepAt = time.Time{}
	if on {
		c.armKeepalive(c.nowHint())
	}
}

// SetKeepAliveParams sets the idle time before the first probe
// (TCP_KEEPIDLE), the probe interval (TCP_KEEPINTVL) and the number of
// unanswered probes before the connection dies (TCP_KEEPCNT). Zero or
// negative values keep the current setting (initially the Config's).
func (c *Conn) SetKeepAliveParams(idle, interval time.Duration, count int) {
	if idle > 0 {
		c.keepIdle = idle
	}
	if interval > 0 {
		c.keepIntvl = interval
	}
	if count > 0 {
		c.keepCnt = count
	}
	if c.keepOn {
		c.keepAt = time.Time{}
		c.armKeepalive(c.nowHint())
	}
}

// SetUserTimeout sets TCP_USER_TIMEOUT (0 = off): the longest time
// transmitted data may stay unacknowledged (or keepalive probes unanswered)
// before the connection is dropped with ETIMEDOUT.
func (c *Conn) SetUserTimeout(d time.Duration) {
	if d >= 0 {
		c.userTimeout = d
	}
}

// SetReadBuffer sets the receive buffer size (SO_RCVBUF, bytes; Linux
// doubles the value and caps it at net.core.rmem_max*2). It turns receive
// buffer auto-tuning off.
func (c *Conn) SetReadBuffer(n int) {
	n = min(n, c.cfg.RMemMax) * 2
	c.rcvBufCap = max(n, 2304)
	c.rcvBufLocked = true
}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF, bytes; doubled and
// capped at net.core.wmem_max*2 like Linux). It turns send buffer
// auto-tuning off.
func (c *Conn) SetWriteBuffer(n int) {
	n = min(n, c.cfg.WMemMax) * 2
	c.sndBufLimit = max(n, 4608)
	c.sndBufLocked = true
}

// SetChallengeACKLimiter installs the stack-wide challenge-ACK limiter
// (net.ipv4.tcp_challenge_ack_limit). allow is called before each challenge
// ACK (after the per-connection tcp_invalid_ratelimit) and returns false to
// suppress it. nil means no global limit.
func (c *Conn) SetChallengeACKLimiter(allow func(now time.Time) bool) { c.challengeAllow = allow }

// SetMemoryPressure installs the stack-wide memory pressure report
// (net.ipv4.tcp_mem above its pressure threshold). While it reports true
// the receive and send buffers do not grow by autotuning, like Linux
// (tcp_under_memory_pressure: no rcvbuf or sndbuf expansion). nil means
// never under pressure.
func (c *Conn) SetMemoryPressure(under func() bool) { c.memPressure = under }

// underMemoryPressure reports the stack-wide tcp_mem pressure.
func (c *Conn) underMemoryPressure() bool { return c.memPressure != nil && c.memPressure() }

// Tuple returns the connection's addresses.
func (c *Conn) Tuple() Tuple { return c.tuple }

// ISS returns the initial send sequence number.
func (c *Conn) ISS() uint32 { return c.iss }
