package tcp

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config holds the knobs of the TCP engine. Field names follow the Linux
// sysctls they mirror (net.ipv4.tcp_*, net.core.somaxconn,
// net.ipv4.ip_local_port_range) and DefaultConfig returns the Linux defaults.
//
// Always start from DefaultConfig: many Linux defaults are non-zero, so the
// zero value of an individual field does not mean "default". As a whole, a
// zero Config (see IsZero) is treated by ustack.New as DefaultConfig.
//
// Values can be changed by sysctl name with Set and read with Get; see
// SysctlNames for the accepted names and ParseSysctl for sysctl.conf files.
//
// Config is a plain comparable value (no slices, maps or pointers), so it can
// be copied freely and compared with ==.
type Config struct {
	// SynRetries is net.ipv4.tcp_syn_retries (default 6, range 1..127): how
	// many times an unanswered active-open SYN is retransmitted. With the
	// 1 s initial RTO doubling this gives up after 127 s.
	SynRetries int
	// SynackRetries is net.ipv4.tcp_synack_retries (default 5, range
	// 0..255): SYN-ACK retransmissions before a half-open request is dropped.
	SynackRetries int
	// SynLinearTimeouts is net.ipv4.tcp_syn_linear_timeouts (Linux 6.5+,
	// default 4 there; ustack default 0, the classic doubling schedule).
	// The first SynLinearTimeouts SYN timeouts use a constant RTOInitial
	// before exponential backoff starts. Range 0..127.
	SynLinearTimeouts int
	// Retries1 is net.ipv4.tcp_retries1 (default 3, range 0..255): after
	// this many RTOs the route is considered suspect (negative advice).
	Retries1 int
	// Retries2 is net.ipv4.tcp_retries2 (default 15, range 0..255). Like
	// Linux it is converted to a time (see RetriesToTime): about 924.6 s
	// with RTOMin 200 ms and RTOMax 120 s.
	Retries2 int
	// OrphanRetries is net.ipv4.tcp_orphan_retries (default 0, range
	// 0..255). As in Linux, 0 means 8 for a connection that was recently
	// alive; see EffectiveOrphanRetries.
	OrphanRetries int
	// KeepaliveTime is net.ipv4.tcp_keepalive_time (default 7200 s, set in
	// whole seconds): idle time before the first keepalive probe.
	KeepaliveTime time.Duration
	// KeepaliveIntvl is net.ipv4.tcp_keepalive_intvl (default 75 s).
	KeepaliveIntvl time.Duration
	// KeepaliveProbes is net.ipv4.tcp_keepalive_probes (default 9, range
	// 0..255): unanswered probes before the connection is dropped.
	KeepaliveProbes int
	// FinTimeout is net.ipv4.tcp_fin_timeout (default 60 s): how long an
	// orphaned connection stays in FIN-WAIT-2.
	FinTimeout time.Duration
	// TimeWaitLen is the TIME-WAIT duration, Linux's fixed TCP_TIMEWAIT_LEN
	// (60 s). Not a sysctl in Linux; configurable here (no sysctl name).
	TimeWaitLen time.Duration

	// RMem is net.ipv4.tcp_rmem: min, default and max receive buffer in
	// bytes (default 4096 131072 6291456; each value >= 1).
	RMem [3]int
	// WMem is net.ipv4.tcp_wmem: min, default and max send buffer in bytes
	// (default 4096 16384 4194304; each value >= 1).
	WMem [3]int
	// Mem is net.ipv4.tcp_mem: low, pressure and high thresholds in pages
	// (4096 bytes) for all TCP memory. Linux derives it from RAM at boot
	// (high = free buffer pages / 16, low = 3/4 of that, max = 2 * low);
	// the default here is what that gives on a 16 GiB machine:
	// 190407 253878 380814.
	Mem [3]int
	// RMemMax is net.core.rmem_max (default 212992): the largest buffer
	// SO_RCVBUF (SetReadBuffer) may request.
	RMemMax int
	// WMemMax is net.core.wmem_max (default 212992): the largest buffer
	// SO_SNDBUF (SetWriteBuffer) may request.
	WMemMax int

	// WindowScaling is net.ipv4.tcp_window_scaling (default 1, RFC 7323).
	WindowScaling bool
	// SACK is net.ipv4.tcp_sack (default 1, RFC 2018).
	SACK bool
	// DSACK is net.ipv4.tcp_dsack (default 1, RFC 2883).
	DSACK bool
	// Timestamps is net.ipv4.tcp_timestamps (default 1): 0 off, 1 on with
	// a random per-connection offset, 2 on without the random offset.
	Timestamps int
	// ECN is net.ipv4.tcp_ecn (default 2): 0 off, 1 request ECN on
	// outgoing and accept on incoming connections, 2 only accept it when
	// the peer requests it.
	ECN int
	// FastOpen is net.ipv4.tcp_fastopen (default 1), a bit mask: 0x1
	// client, 0x2 server, 0x4 client sends data without a cookie, 0x200
	// server accepts data without a cookie, 0x400 server enabled on all
	// listeners without TCP_FASTOPEN.
	FastOpen int
	// FastOpenKey is net.ipv4.tcp_fastopen_key: the primary and optional
	// backup 16-byte server cookie keys. Linux generates a random key on
	// first use; likewise a zero primary key here means the runtime picks
	// a random key.
	FastOpenKey FastOpenKeys
	// FastOpenBlackholeTimeout is
	// net.ipv4.tcp_fastopen_blackhole_timeout_sec (default 0 since Linux
	// 5.14 = detection off): how long active TFO is disabled after a
	// middlebox is suspected of dropping TFO packets.
	FastOpenBlackholeTimeout time.Duration
	// CongestionControl is net.ipv4.tcp_congestion_control (default
	// "cubic"). The name is checked when a connection is created.
	CongestionControl string
	// SlowStartAfterIdle is net.ipv4.tcp_slow_start_after_idle (default 1,
	// RFC 5681 section 4.1 restart window).
	SlowStartAfterIdle bool
	// Syncookies is net.ipv4.tcp_syncookies (default 1): 0 off, 1 send
	// cookies when the SYN queue overflows, 2 always send cookies.
	Syncookies int
	// MaxSynBacklog is net.ipv4.tcp_max_syn_backlog: half-open requests
	// kept per listener before SYN cookies (or drops) start. Linux sets it
	// to max(128, established-hash-size/128), which is 4096 with a
	// 524288-entry hash (a machine with tens of GiB); 4096 is the default
	// here.
	MaxSynBacklog int
	// Somaxconn is net.core.somaxconn (default 4096 since Linux 5.4): the
	// cap on listen backlogs.
	Somaxconn int
	// RFC1337 is net.ipv4.tcp_rfc1337 (default 0). When set, RSTs received
	// in TIME-WAIT are ignored (RFC 1337 TIME-WAIT assassination fix).
	RFC1337 bool
	// ChallengeAckLimit is net.ipv4.tcp_challenge_ack_limit: challenge ACKs
	// (RFC 5961) allowed per second. Linux 6.0+ (and stable backports)
	// default it to INT_MAX (2147483647), i.e. effectively unlimited, the
	// global limit being a side channel (CVE-2016-5696).
	ChallengeAckLimit int
	// InvalidRatelimit is net.ipv4.tcp_invalid_ratelimit (default 500 ms,
	// set in milliseconds): minimum spacing of duplicate ACKs sent in reply
	// to out-of-window segments.
	InvalidRatelimit time.Duration
	// MaxOrphans is net.ipv4.tcp_max_orphans: orphaned sockets allowed
	// before they are reset. Linux derives it from RAM (established-hash
	// size / 2); default here 262144, matching MaxSynBacklog's 524288-entry
	// hash.
	MaxOrphans int
	// MaxTwBuckets is net.ipv4.tcp_max_tw_buckets: TIME-WAIT sockets
	// allowed. Linux derives it from RAM (established-hash size / 2);
	// default 262144.
	MaxTwBuckets int

	// RTOMin is the minimum RTO, net.ipv4.tcp_rto_min_us (Linux 6.11+,
	// default 200000 µs, Linux's TCP_RTO_MIN).
	RTOMin time.Duration
	// RTOMax is the maximum RTO, net.ipv4.tcp_rto_max_ms (Linux 6.15+,
	// default 120000 ms, range 1000..120000, Linux's TCP_RTO_MAX).
	RTOMax time.Duration
	// RTOInitial is the RTO before any RTT sample, Linux's TCP_TIMEOUT_INIT
	// (1 s, RFC 6298). No sysctl name.
	RTOInitial time.Duration
	// RTOFallback is the RTO used for data after a handshake that needed
	// retransmission, Linux's TCP_TIMEOUT_FALLBACK (3 s, RFC 6298 5.7). No
	// sysctl name.
	RTOFallback time.Duration
	// DelAckMin is the minimum delayed-ACK timeout, Linux's TCP_DELACK_MIN
	// (40 ms). No sysctl name.
	DelAckMin time.Duration
	// DelAckMax is the maximum delayed-ACK timeout, Linux's TCP_DELACK_MAX
	// (200 ms). No sysctl name.
	DelAckMax time.Duration

	// BaseMSS is net.ipv4.tcp_base_mss (default 1024): the starting MSS of
	// packetization-layer path MTU discovery.
	BaseMSS int
	// MinSndMSS is net.ipv4.tcp_min_snd_mss (default 48, range 48..65495):
	// the smallest MSS a peer may make us use.
	MinSndMSS int
	// MTUProbing is net.ipv4.tcp_mtu_probing (default 0): 0 off, 1 on
	// after an ICMP black hole is detected, 2 always (RFC 4821).
	MTUProbing int
	// Reordering is net.ipv4.tcp_reordering (default 3): initial
	// reordering degree (duplicate ACK threshold).
	Reordering int
	// MaxReordering is net.ipv4.tcp_max_reordering (default 300).
	MaxReordering int
	// Recovery is net.ipv4.tcp_recovery (default 1), a bit mask: 0x1 RACK
	// loss detection (RFC 8985), 0x2 static RACK reordering window
	// (min_rtt/4), 0x4 disable RACK's duplicate-ACK threshold heuristic.
	Recovery int
	// EarlyRetrans is net.ipv4.tcp_early_retrans (default 3, range 0..4):
	// 3 enables Tail Loss Probe (TLP).
	EarlyRetrans int
	// FRTO is net.ipv4.tcp_frto (default 2): F-RTO (RFC 5682) spurious RTO
	// detection; 0 off, non-zero on (2 = SACK-enhanced).
	FRTO int
	// ThinLinearTimeouts is net.ipv4.tcp_thin_linear_timeouts (default 0):
	// linear timeouts for thin streams.
	ThinLinearTimeouts bool
	// AdvWinScale is net.ipv4.tcp_adv_win_scale (default 1, range -31..31):
	// share of the receive buffer used as window vs application overhead.
	AdvWinScale int
	// ModerateRcvbuf is net.ipv4.tcp_moderate_rcvbuf (default 1): receive
	// buffer auto-tuning.
	ModerateRcvbuf bool
	// NoMetricsSave is net.ipv4.tcp_no_metrics_save (default 0): do not
	// cache per-destination metrics when connections close.
	NoMetricsSave bool
	// Autocorking is net.ipv4.tcp_autocorking (default 1).
	Autocorking bool
	// NotsentLowat is net.ipv4.tcp_notsent_lowat (default UINT_MAX =
	// 4294967295, i.e. off): writable only while unsent data is below it.
	NotsentLowat int64
	// LimitOutputBytes is net.ipv4.tcp_limit_output_bytes (TCP small
	// queues; default 4194304 = 4 MB as in Linux 6.16+, 1 MB before).
	LimitOutputBytes int
	// PacingSSRatio is net.ipv4.tcp_pacing_ss_ratio (default 200 percent
	// of cwnd/srtt in slow start).
	PacingSSRatio int
	// PacingCARatio is net.ipv4.tcp_pacing_ca_ratio (default 120 percent
	// in congestion avoidance).
	PacingCARatio int
	// MinRTTWlen is net.ipv4.tcp_min_rtt_wlen (default 300 s, range
	// 0..86400): window of the windowed min RTT filter.
	MinRTTWlen time.Duration
	// AbortOnOverflow is net.ipv4.tcp_abort_on_overflow (default 0): reset
	// new connections when the accept queue is full.
	AbortOnOverflow bool
	// TwReuse is net.ipv4.tcp_tw_reuse (default 2): 0 off, 1 reuse
	// TIME-WAIT ports for new outgoing connections, 2 only for loopback.
	TwReuse int
	// IPLocalPortRange is net.ipv4.ip_local_port_range (default 32768
	// 60999): the ephemeral port range, both ends inclusive, 1..65535.
	IPLocalPortRange [2]int

	// NoDelay is the per-socket default of TCP_NODELAY (false: Nagle on).
	// Not a sysctl.
	NoDelay bool
	// UserTimeout is the per-socket default of TCP_USER_TIMEOUT (0 = off,
	// use Retries2). Not a sysctl.
	UserTimeout time.Duration

	// SACKRecoveryInflate (default false; ustack's own knob, no sysctl,
	// not Linux, not RFC) replaces PRR during SACK fast recovery with the
	// rule of gVisor netstack: the window is ssthresh + Reordering
	// (net.ipv4.tcp_reordering, the duplicate-ACK threshold, 3) from the
	// start of recovery, and packets go while the RFC 6675 pipe is below
	// it. That keeps the RFC 5681
	// "+3" inflation, which RFC 6675 (cwnd = ssthresh) and PRR (RFC
	// 9937, Linux) drop for SACK, so it sends up to three packets more
	// per RTT of recovery than the standards allow. It only matters
	// with small windows and frequent losses: on a 100 Mbit/s, 20 ms
	// path with 3 % random loss, Reno gains about 11 % (sim/goodput_test.go).
	// Controllers that run their own recovery window (BBR) ignore it.
	SACKRecoveryInflate bool
}

// Bits of Config.FastOpen (net.ipv4.tcp_fastopen).
const (
	FastOpenClient             = 0x1   // send data in the opening SYN
	FastOpenServer             = 0x2   // accept data in the SYN on listeners that enable TFO
	FastOpenClientNoCookie     = 0x4   // client: send SYN data without a cookie
	FastOpenServerNoCookie     = 0x200 // server: accept SYN data without a cookie
	FastOpenServerAllListeners = 0x400 // server: enable TFO on all listeners
)

// FastOpenKeys are the server-side TCP Fast Open cookie keys
// (net.ipv4.tcp_fastopen_key). Cookies are generated with Primary and
// accepted if they match Primary or, when HasBackup is set, Backup; this
// allows key rotation without invalidating cookies issued just before.
type FastOpenKeys struct {
	Primary, Backup [16]byte
	HasBackup       bool
}

// IsZero reports whether no key has been set.
func (k *FastOpenKeys) IsZero() bool { return *k == FastOpenKeys{} }

// Linux constants used by DefaultConfig.
const (
	maxTCPSyncnt    = 127        // MAX_TCP_SYNCNT
	sysctlIntMax    = 2147483647 // INT_MAX
	sysctlUintMax   = 4294967295 // UINT_MAX
	minSndMSSLimit  = 48         // TCP_MIN_SND_MSS
	maxSndMSSLimit  = 65535 - 20 - 20
	rtoMaxMinLinux  = 1000 * time.Millisecond
	rtoMaxMaxLinux  = 120 * time.Second
	minRTTWlenLimit = 86400 // seconds
)

// DefaultConfig returns the Linux defaults (see each field's comment).
func DefaultConfig() Config {
	return Config{
		SynRetries:        6,
		SynackRetries:     5,
		SynLinearTimeouts: 0,
		Retries1:          3,
		Retries2:          15,
		OrphanRetries:     0,
		KeepaliveTime:     7200 * time.Second,
		KeepaliveIntvl:    75 * time.Second,
		KeepaliveProbes:   9,
		FinTimeout:        60 * time.Second,
		TimeWaitLen:       60 * time.Second,

		RMem:    [3]int{4096, 131072, 6291456},
		WMem:    [3]int{4096, 16384, 4194304},
		Mem:     [3]int{190407, 253878, 380814},
		RMemMax: 212992,
		WMemMax: 212992,

		WindowScaling:            true,
		SACK:                     true,
		DSACK:                    true,
		Timestamps:               1,
		ECN:                      2,
		FastOpen:                 1,
		FastOpenBlackholeTimeout: 0,
		CongestionControl:        "cubic",
		SlowStartAfterIdle:       true,
		Syncookies:               1,
		MaxSynBacklog:            4096,
		Somaxconn:                4096,
		RFC1337:                  false,
		ChallengeAckLimit:        sysctlIntMax,
		InvalidRatelimit:         500 * time.Millisecond,
		MaxOrphans:               262144,
		MaxTwBuckets:             262144,

		RTOMin:      200 * time.Millisecond,
		RTOMax:      120 * time.Second,
		RTOInitial:  1 * time.Second,
		RTOFallback: 3 * time.Second,
		DelAckMin:   40 * time.Millisecond,
		DelAckMax:   200 * time.Millisecond,

		BaseMSS:            1024,
		MinSndMSS:          48,
		MTUProbing:         0,
		Reordering:         3,
		MaxReordering:      300,
		Recovery:           1,
		EarlyRetrans:       3,
		FRTO:               2,
		ThinLinearTimeouts: false,
		AdvWinScale:        1,
		ModerateRcvbuf:     true,
		NoMetricsSave:      false,
		Autocorking:        true,
		NotsentLowat:       sysctlUintMax,
		LimitOutputBytes:   4194304,
		PacingSSRatio:      200,
		PacingCARatio:      120,
		MinRTTWlen:         300 * time.Second,
		AbortOnOverflow:    false,
		TwReuse:            2,
		IPLocalPortRange:   [2]int{32768, 60999},

		NoDelay:     false,
		UserTimeout: 0,
	}
}

// IsZero reports whether c is the zero Config, which ustack.New treats as
// DefaultConfig.
func (c *Config) IsZero() bool { return *c == Config{} }

// EffectiveOrphanRetries returns the retransmission limit for an orphaned
// connection as Linux computes it: OrphanRetries, except that 0 means 8 when
// the connection was alive recently (alive: its RTO has not yet grown past
// the RTOMax limit).
func (c *Config) EffectiveOrphanRetries(alive bool) int {
	if c.OrphanRetries == 0 && alive {
		return 8
	}
	return c.OrphanRetries
}

// ErrUnknownSysctl is returned (wrapped) by Set and Get for names that are
// not sysctls of this Config.
var ErrUnknownSysctl = errors.New("unknown sysctl")

// ErrInvalidSysctlValue is returned (wrapped) by Set for values that do not
// parse or are out of range.
var ErrInvalidSysctlValue = errors.New("invalid sysctl value")

// SysctlError describes a failed Set or Get. It wraps ErrUnknownSysctl or
// ErrInvalidSysctlValue.
type SysctlError struct {
	Name   string // the name as given
	Value  string // the value given to Set, "" for Get
	Reason string // what is wrong
	Err    error  // ErrUnknownSysctl or ErrInvalidSysctlValue
}

func (e *SysctlError) Error() string {
	if e.Err == ErrUnknownSysctl {
		return fmt.Sprintf("sysctl %s: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("sysctl %s: invalid value %q: %s", e.Name, e.Value, e.Reason)
}

func (e *SysctlError) Unwrap() error { return e.Err }

type sysctlVar struct {
	name string // canonical dotted name
	get  func(c *Config) string
	set  func(c *Config, v string) (reason string)
	// check validates the current value (for Validate); "" if fine.
	check func(c *Config) (reason string)
}

func sysctlParseInt(v string) (int64, string) {
	f := strings.Fields(v)
	if len(f) != 1 {
		return 0, "want one integer"
	}
	n, ok := parseCInt(f[0])
	if !ok {
		return 0, "not an integer"
	}
	return n, ""
}

// parseCInt parses an integer the way Linux's proc_dointvec does (kernel
// strtoul with base 0): an optional sign, then hexadecimal after "0x" or
// "0X", octal after a leading "0", decimal otherwise.
func parseCInt(s string) (int64, bool) {
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	base := 10
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" || s[0] == '+' || s[0] == '-' || strings.ContainsRune(s, '_') {
		return 0, false
	}
	u, err := strconv.ParseUint(s, base, 63)
	if err != nil {
		return 0, false
	}
	n := int64(u)
	if neg {
		n = -n
	}
	return n, true
}

func sysctlRangeReason(n, lo, hi int64) string {
	if n < lo || n > hi {
		return fmt.Sprintf("%d out of range %d..%d", n, lo, hi)
	}
	return ""
}

func sysctlInt(name string, p func(*Config) *int, lo, hi int64) sysctlVar {
	return sysctlVar{
		name: name,
		get:  func(c *Config) string { return strconv.Itoa(*p(c)) },
		set: func(c *Config, v string) string {
			n, r := sysctlParseInt(v)
			if r == "" {
				r = sysctlRangeReason(n, lo, hi)
			}
			if r == "" {
				*p(c) = int(n)
			}
			return r
		},
		check: func(c *Config) string { return sysctlRangeReason(int64(*p(c)), lo, hi) },
	}
}

func sysctlInt64(name string, p func(*Config) *int64, lo, hi int64) sysctlVar {
	return sysctlVar{
		name: name,
		get:  func(c *Config) string { return strconv.FormatInt(*p(c), 10) },
		set: func(c *Config, v string) string {
			n, r := sysctlParseInt(v)
			if r == "" {
				r = sysctlRangeReason(n, lo, hi)
			}
			if r == "" {
				*p(c) = n
			}
			return r
		},
		check: func(c *Config) string { return sysctlRangeReason(*p(c), lo, hi) },
	}
}

func sysctlBool(name string, p func(*Config) *bool) sysctlVar {
	return sysctlVar{
		name: name,
		get: func(c *Config) string {
			if *p(c) {
				return "1"
			}
			return "0"
		},
		set: func(c *Config, v string) string {
			n, r := sysctlParseInt(v)
			if r == "" {
				r = sysctlRangeReason(n, 0, 1)
			}
			if r == "" {
				*p(c) = n == 1
			}
			return r
		},
		check: func(*Config) string { return "" },
	}
}

// sysctlDur is a duration sysctl expressed in whole units (time.Second for the
// jiffies-in-seconds sysctls, time.Millisecond, time.Microsecond).
func sysctlDur(name string, p func(*Config) *time.Duration, unit time.Duration, lo, hi int64) sysctlVar {
	unitName := map[time.Duration]string{time.Second: "s", time.Millisecond: "ms", time.Microsecond: "µs"}[unit]
	check := func(d time.Duration) string {
		if d%unit != 0 {
			return fmt.Sprintf("%v is not a whole number of %s", d, unitName)
		}
		return sysctlRangeReason(int64(d/unit), lo, hi)
	}
	return sysctlVar{
		name: name,
		get:  func(c *Config) string { return strconv.FormatInt(int64(*p(c)/unit), 10) },
		set: func(c *Config, v string) string {
			n, r := sysctlParseInt(v)
			if r == "" {
				r = sysctlRangeReason(n, lo, hi)
			}
			if r == "" {
				*p(c) = time.Duration(n) * unit
			}
			return r
		},
		check: func(c *Config) string { return check(*p(c)) },
	}
}

func sysctlVec3(name string, p func(*Config) *[3]int, lo int64) sysctlVar {
	check := func(a [3]int) string {
		for _, n := range a {
			if r := sysctlRangeReason(int64(n), lo, sysctlIntMax); r != "" {
				return r
			}
		}
		return ""
	}
	return sysctlVar{
		name: name,
		get: func(c *Config) string {
			a := *p(c)
			return fmt.Sprintf("%d\t%d\t%d", a[0], a[1], a[2])
		},
		set: func(c *Config, v string) string {
			f := strings.Fields(v)
			if len(f) != 3 {
				return fmt.Sprintf("want 3 integers, got %d fields", len(f))
			}
			var a [3]int
			for i, s := range f {
				n, ok := parseCInt(s)
				if !ok {
					return fmt.Sprintf("field %d %q is not an integer", i+1, s)
				}
				if r := sysctlRangeReason(n, lo, sysctlIntMax); r != "" {
					return fmt.Sprintf("field %d: %s", i+1, r)
				}
				a[i] = int(n)
			}
			*p(c) = a
			return ""
		},
		check: func(c *Config) string { return check(*p(c)) },
	}
}

var sysctlVars = []sysctlVar{
	sysctlInt("net.ipv4.tcp_syn_retries", func(c *Config) *int { return &c.SynRetries }, 1, maxTCPSyncnt),
	sysctlInt("net.ipv4.tcp_synack_retries", func(c *Config) *int { return &c.SynackRetries }, 0, 255),
	sysctlInt("net.ipv4.tcp_syn_linear_timeouts", func(c *Config) *int { return &c.SynLinearTimeouts }, 0, maxTCPSyncnt),
	sysctlInt("net.ipv4.tcp_retries1", func(c *Config) *int { return &c.Retries1 }, 0, 255),
	sysctlInt("net.ipv4.tcp_retries2", func(c *Config) *int { return &c.Retries2 }, 0, 255),
	sysctlInt("net.ipv4.tcp_orphan_retries", func(c *Config) *int { return &c.OrphanRetries }, 0, 255),
	sysctlDur("net.ipv4.tcp_keepalive_time", func(c *Config) *time.Duration { return &c.KeepaliveTime }, time.Second, 1, sysctlIntMax/1000),
	sysctlDur("net.ipv4.tcp_keepalive_intvl", func(c *Config) *time.Duration { return &c.KeepaliveIntvl }, time.Second, 1, sysctlIntMax/1000),
	sysctlInt("net.ipv4.tcp_keepalive_probes", func(c *Config) *int { return &c.KeepaliveProbes }, 0, 255),
	sysctlDur("net.ipv4.tcp_fin_timeout", func(c *Config) *time.Duration { return &c.FinTimeout }, time.Second, 0, sysctlIntMax/1000),
	sysctlVec3("net.ipv4.tcp_rmem", func(c *Config) *[3]int { return &c.RMem }, 1),
	sysctlVec3("net.ipv4.tcp_wmem", func(c *Config) *[3]int { return &c.WMem }, 1),
	sysctlVec3("net.ipv4.tcp_mem", func(c *Config) *[3]int { return &c.Mem }, 0),
	sysctlInt("net.core.rmem_max", func(c *Config) *int { return &c.RMemMax }, 0, sysctlIntMax),
	sysctlInt("net.core.wmem_max", func(c *Config) *int { return &c.WMemMax }, 0, sysctlIntMax),
	sysctlBool("net.ipv4.tcp_window_scaling", func(c *Config) *bool { return &c.WindowScaling }),
	sysctlBool("net.ipv4.tcp_sack", func(c *Config) *bool { return &c.SACK }),
	sysctlBool("net.ipv4.tcp_dsack", func(c *Config) *bool { return &c.DSACK }),
	sysctlInt("net.ipv4.tcp_timestamps", func(c *Config) *int { return &c.Timestamps }, 0, 2),
	sysctlInt("net.ipv4.tcp_ecn", func(c *Config) *int { return &c.ECN }, 0, 2),
	sysctlInt("net.ipv4.tcp_fastopen", func(c *Config) *int { return &c.FastOpen }, 0, sysctlIntMax),
	{
		name:  "net.ipv4.tcp_fastopen_key",
		get:   func(c *Config) string { return formatFastOpenKeys(&c.FastOpenKey) },
		set:   setFastOpenKeys,
		check: func(*Config) string { return "" },
	},
	sysctlDur("net.ipv4.tcp_fastopen_blackhole_timeout_sec", func(c *Config) *time.Duration { return &c.FastOpenBlackholeTimeout }, time.Second, 0, sysctlIntMax/1000),
	{
		name: "net.ipv4.tcp_congestion_control",
		get:  func(c *Config) string { return c.CongestionControl },
		set: func(c *Config, v string) string {
			v = strings.TrimSpace(v)
			if r := checkCCName(v); r != "" {
				return r
			}
			c.CongestionControl = v
			return ""
		},
		check: func(c *Config) string { return checkCCName(c.CongestionControl) },
	},
	sysctlBool("net.ipv4.tcp_slow_start_after_idle", func(c *Config) *bool { return &c.SlowStartAfterIdle }),
	sysctlInt("net.ipv4.tcp_syncookies", func(c *Config) *int { return &c.Syncookies }, 0, 2),
	sysctlInt("net.ipv4.tcp_max_syn_backlog", func(c *Config) *int { return &c.MaxSynBacklog }, 0, sysctlIntMax),
	sysctlInt("net.core.somaxconn", func(c *Config) *int { return &c.Somaxconn }, 0, sysctlIntMax),
	sysctlBool("net.ipv4.tcp_rfc1337", func(c *Config) *bool { return &c.RFC1337 }),
	sysctlInt("net.ipv4.tcp_challenge_ack_limit", func(c *Config) *int { return &c.ChallengeAckLimit }, 0, sysctlIntMax),
	sysctlDur("net.ipv4.tcp_invalid_ratelimit", func(c *Config) *time.Duration { return &c.InvalidRatelimit }, time.Millisecond, 0, sysctlIntMax),
	sysctlInt("net.ipv4.tcp_max_orphans", func(c *Config) *int { return &c.MaxOrphans }, 0, sysctlIntMax),
	sysctlInt("net.ipv4.tcp_max_tw_buckets", func(c *Config) *int { return &c.MaxTwBuckets }, 0, sysctlIntMax),
	sysctlDur("net.ipv4.tcp_rto_min_us", func(c *Config) *time.Duration { return &c.RTOMin }, time.Microsecond, 1, sysctlIntMax),
	sysctlDur("net.ipv4.tcp_rto_max_ms", func(c *Config) *time.Duration { return &c.RTOMax }, time.Millisecond, int64(rtoMaxMinLinux/time.Millisecond), int64(rtoMaxMaxLinux/time.Millisecond)),
	sysctlInt("net.ipv4.tcp_base_mss", func(c *Config) *int { return &c.BaseMSS }, 1, maxSndMSSLimit),
	sysctlInt("net.ipv4.tcp_min_snd_mss", func(c *Config) *int { return &c.MinSndMSS }, minSndMSSLimit, maxSndMSSLimit),
	sysctlInt("net.ipv4.tcp_mtu_probing", func(c *Config) *int { return &c.MTUProbing }, 0, 2),
	sysctlInt("net.ipv4.tcp_reordering", func(c *Config) *int { return &c.Reordering }, 1, sysctlIntMax),
	sysctlInt("net.ipv4.tcp_max_reordering", func(c *Config) *int { return &c.MaxReordering }, 1, sysctlIntMax),
	sysctlInt("net.ipv4.tcp_recovery", func(c *Config) *int { return &c.Recovery }, 0, 7),
	sysctlInt("net.ipv4.tcp_early_retrans", func(c *Config) *int { return &c.EarlyRetrans }, 0, 4),
	sysctlInt("net.ipv4.tcp_frto", func(c *Config) *int { return &c.FRTO }, 0, 2),
	sysctlBool("net.ipv4.tcp_thin_linear_timeouts", func(c *Config) *bool { return &c.ThinLinearTimeouts }),
	sysctlInt("net.ipv4.tcp_adv_win_scale", func(c *Config) *int { return &c.AdvWinScale }, -31, 31),
	sysctlBool("net.ipv4.tcp_moderate_rcvbuf", func(c *Config) *bool { return &c.ModerateRcvbuf }),
	sysctlBool("net.ipv4.tcp_no_metrics_save", func(c *Config) *bool { return &c.NoMetricsSave }),
	sysctlBool("net.ipv4.tcp_autocorking", func(c *Config) *bool { return &c.Autocorking }),
	sysctlInt64("net.ipv4.tcp_notsent_lowat", func(c *Config) *int64 { return &c.NotsentLowat }, 0, sysctlUintMax),
	sysctlInt("net.ipv4.tcp_limit_output_bytes", func(c *Config) *int { return &c.LimitOutputBytes }, 0, sysctlIntMax),
	sysctlInt("net.ipv4.tcp_pacing_ss_ratio", func(c *Config) *int { return &c.PacingSSRatio }, 0, 1000),
	sysctlInt("net.ipv4.tcp_pacing_ca_ratio", func(c *Config) *int { return &c.PacingCARatio }, 0, 1000),
	sysctlDur("net.ipv4.tcp_min_rtt_wlen", func(c *Config) *time.Duration { return &c.MinRTTWlen }, time.Second, 0, minRTTWlenLimit),
	sysctlBool("net.ipv4.tcp_abort_on_overflow", func(c *Config) *bool { return &c.AbortOnOverflow }),
	sysctlInt("net.ipv4.tcp_tw_reuse", func(c *Config) *int { return &c.TwReuse }, 0, 2),
	{
		name: "net.ipv4.ip_local_port_range",
		get: func(c *Config) string {
			return fmt.Sprintf("%d\t%d", c.IPLocalPortRange[0], c.IPLocalPortRange[1])
		},
		set: func(c *Config, v string) string {
			f := strings.Fields(v)
			if len(f) != 2 {
				return fmt.Sprintf("want 2 integers (low high), got %d fields", len(f))
			}
			var r [2]int
			for i, s := range f {
				n64, ok := parseCInt(s)
				if !ok || n64 != int64(int(n64)) {
					return fmt.Sprintf("field %d %q is not an integer", i+1, s)
				}
				n := int(n64)
				r[i] = n
			}
			if reason := checkPortRange(r); reason != "" {
				return reason
			}
			c.IPLocalPortRange = r
			return ""
		},
		check: func(c *Config) string { return checkPortRange(c.IPLocalPortRange) },
	},
}

func checkPortRange(r [2]int) string {
	for _, n := range r {
		if n < 1 || n > 65535 {
			return fmt.Sprintf("port %d out of range 1..65535", n)
		}
	}
	if r[0] > r[1] {
		return fmt.Sprintf("low port %d above high port %d", r[0], r[1])
	}
	return ""
}

func checkCCName(v string) string {
	if v == "" {
		return "empty congestion control name"
	}
	if len(v) > 15 { // TCP_CA_NAME_MAX-1
		return "congestion control name longer than 15 bytes"
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Sprintf("bad character %q in congestion control name", r)
		}
	}
	return ""
}

// formatFastOpenKeys prints keys like Linux: each 16-byte key as four
// little-endian 32-bit words in %08x, separated by '-', backup after ','.
func formatFastOpenKeys(k *FastOpenKeys) string {
	f := func(b *[16]byte) string {
		var s [4]string
		for i := range s {
			w := uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24
			s[i] = fmt.Sprintf("%08x", w)
		}
		return strings.Join(s[:], "-")
	}
	out := f(&k.Primary)
	if k.HasBackup {
		out += "," + f(&k.Backup)
	}
	return out
}

// ParseFastOpenKeys parses net.ipv4.tcp_fastopen_key syntax: one or two
// keys separated by ',', each four hex 32-bit words separated by '-'
// ("00112233-44556677-8899aabb-ccddeeff"), stored little-endian per word
// as Linux does.
func ParseFastOpenKeys(v string) (FastOpenKeys, error) {
	var k FastOpenKeys
	if r := parseFastOpenKeys(strings.TrimSpace(v), &k); r != "" {
		return FastOpenKeys{}, &SysctlError{Name: "net.ipv4.tcp_fastopen_key", Value: v, Reason: r, Err: ErrInvalidSysctlValue}
	}
	return k, nil
}

func parseFastOpenKeys(v string, k *FastOpenKeys) string {
	parts := strings.Split(v, ",")
	if len(parts) > 2 {
		return "at most 2 keys (primary,backup)"
	}
	var keys [2][16]byte
	for ki, p := range parts {
		words := strings.Split(strings.TrimSpace(p), "-")
		if len(words) != 4 {
			return fmt.Sprintf("key %d: want 4 hex words separated by '-', got %d", ki+1, len(words))
		}
		for wi, w := range words {
			if len(w) == 0 || len(w) > 8 {
				return fmt.Sprintf("key %d word %d: want 1 to 8 hex digits", ki+1, wi+1)
			}
			n, err := strconv.ParseUint(w, 16, 32)
			if err != nil {
				return fmt.Sprintf("key %d word %d %q is not hex", ki+1, wi+1, w)
			}
			keys[ki][4*wi] = byte(n)
			keys[ki][4*wi+1] = byte(n >> 8)
			keys[ki][4*wi+2] = byte(n >> 16)
			keys[ki][4*wi+3] = byte(n >> 24)
		}
	}
	*k = FastOpenKeys{Primary: keys[0], Backup: keys[1], HasBackup: len(parts) == 2}
	return ""
}

func setFastOpenKeys(c *Config, v string) string {
	var k FastOpenKeys
	if r := parseFastOpenKeys(strings.TrimSpace(v), &k); r != "" {
		return r
	}
	c.FastOpenKey = k
	return ""
}

var sysctlIndex = func() map[string]*sysctlVar {
	m := make(map[string]*sysctlVar, len(sysctlVars))
	for i := range sysctlVars {
		m[sysctlVars[i].name] = &sysctlVars[i]
	}
	return m
}()

// canonicalSysctlName accepts "net.ipv4.tcp_x", "net/ipv4/tcp_x" and
// "/proc/sys/net/ipv4/tcp_x" and returns the dotted form.
func canonicalSysctlName(name string) string {
	n := strings.TrimSpace(name)
	n = strings.TrimPrefix(n, "/proc/sys/")
	n = strings.TrimPrefix(n, "/")
	if strings.Contains(n, "/") {
		n = strings.ReplaceAll(n, "/", ".")
	}
	return n
}

func lookupSysctl(name string) (*sysctlVar, error) {
	v, ok := sysctlIndex[canonicalSysctlName(name)]
	if !ok {
		return nil, &SysctlError{Name: name, Reason: "no such sysctl (see tcp.SysctlNames)", Err: ErrUnknownSysctl}
	}
	return v, nil
}

// Set sets the field named by the Linux sysctl name, e.g.
// c.Set("net.ipv4.tcp_syn_retries", "3"). Names may also use '/' separators
// as in /proc/sys paths. Values use the /proc/sys syntax: integers, several
// whitespace-separated integers for tcp_rmem, tcp_wmem, tcp_mem and
// ip_local_port_range, 0/1 for booleans, seconds / milliseconds /
// microseconds as the sysctl name says, Linux's key format for
// tcp_fastopen_key. On error c is unchanged and the error is a
// *SysctlError wrapping ErrUnknownSysctl or ErrInvalidSysctlValue.
func (c *Config) Set(name, value string) error {
	v, err := lookupSysctl(name)
	if err != nil {
		return err
	}
	if r := v.set(c, value); r != "" {
		return &SysctlError{Name: v.name, Value: value, Reason: r, Err: ErrInvalidSysctlValue}
	}
	return nil
}

// Get returns the value of the sysctl name in the format /proc/sys shows
// (vectors separated by tabs).
func (c *Config) Get(name string) (string, error) {
	v, err := lookupSysctl(name)
	if err != nil {
		return "", err
	}
	return v.get(c), nil
}

// Validate checks every sysctl-backed field against the ranges Set
// enforces, plus the consistency of the fields without a sysctl name.
// It returns all problems joined.
func (c *Config) Validate() error {
	var errs []error
	for i := range sysctlVars {
		v := &sysctlVars[i]
		if r := v.check(c); r != "" {
			errs = append(errs, &SysctlError{Name: v.name, Value: v.get(c), Reason: r, Err: ErrInvalidSysctlValue})
		}
	}
	bad := func(field, reason string) {
		errs = append(errs, fmt.Errorf("tcp config %s: %s: %w", field, reason, ErrInvalidSysctlValue))
	}
	if c.RTOMin > c.RTOMax {
		bad("RTOMin", fmt.Sprintf("%v above RTOMax %v", c.RTOMin, c.RTOMax))
	}
	if c.RTOInitial <= 0 {
		bad("RTOInitial", "must be positive")
	}
	if c.RTOFallback <= 0 {
		bad("RTOFallback", "must be positive")
	}
	if c.TimeWaitLen < 0 {
		bad("TimeWaitLen", "must not be negative")
	}
	if c.DelAckMin <= 0 || c.DelAckMin > c.DelAckMax {
		bad("DelAckMin", fmt.Sprintf("%v must be positive and not above DelAckMax %v", c.DelAckMin, c.DelAckMax))
	}
	if c.UserTimeout < 0 || c.UserTimeout > time.Duration(math.MaxInt32)*time.Millisecond {
		bad("UserTimeout", "must be 0..2147483647 ms")
	}
	return errors.Join(errs...)
}

// SysctlNames returns the accepted sysctl names (dotted form), sorted.
func SysctlNames() []string {
	names := make([]string, len(sysctlVars))
	for i := range sysctlVars {
		names[i] = sysctlVars[i].name
	}
	sort.Strings(names)
	return names
}
