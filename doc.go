// Package ustack is a userspace TCP/IP stack: the runtime around the
// sans-IO TCP engine of package tcp.
//
// A Stack owns link endpoints (package link: a Linux TUN device, an
// in-memory Pipe, impaired or captured variants), a routing table, ICMP
// echo for IPv4 and IPv6, and TCP connections that Go programs use as
// net.Conn and net.Listener, so crypto/tls and net/http work on top:
//
//	s, err := ustack.New(ustack.Config{})      // zero Config = Linux defaults
//	err = s.AddInterface("tun0", ep, netip.MustParsePrefix("10.9.0.2/24"))
//	err = s.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.9.0.1"), "tun0")
//	ln, err := s.Listen("tcp", ":80")        // "tcp", "tcp4", "tcp6"
//	c, err := s.Dial("tcp", "10.9.0.1:8080") // *ustack.TCPConn
//	d := ustack.Dialer{Stack: s, Timeout: 5 * time.Second}
//	http.Serve(ln, handler)
//	client := &http.Client{Transport: &http.Transport{DialContext: s.DialContext}}
//
// # Configuration
//
// Config.TCP is a tcp.Config whose fields carry Linux sysctl names and
// defaults (tcp_syn_retries, tcp_rmem, somaxconn, ip_local_port_range, ...).
// ParseSysctl reads a sysctl.conf file into a Config.
//
// # Input path
//
// Each interface has one reader goroutine (using batch reads when the link
// offers them). Every stack also has a loopback interface "lo" with
// 127.0.0.1/8 and ::1: packets to any of the stack's own addresses go
// through it, so a stack can dial its own listeners. A packet is parsed in
// place: IPv4/IPv6 header checks, header and upper-layer checksums, martian
// sources (multicast, broadcast, loopback or one of our own addresses
// arriving from a link), our-address check, then demux by protocol. Every drop is counted under a clear name in Stats (IP
// InHdrErrors, InAddrErrors, InCsumErrors, NotForUs, InTruncatedPkts,
// FragmentsDropped (ustack does not reassemble), InUnknownProtos; ICMP
// InCsumErrors; TCP InCsumErrors, InErrs, NoPort, ListenDrops, ...). ICMP
// echo requests are answered; unknown IPv4 protocols get an ICMP protocol
// unreachable, as Linux sends, rate-limited like icmp_msgs_per_sec (1000/s,
// burst 50). ICMP errors quoting our TCP segments (with an in-flight
// sequence number, RFC 5927) fail a connect in SYN-SENT with Linux's errno
// (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ...) or lower the connection's
// MSS to a reported path MTU. Stack.Ping sends an ICMP or ICMPv6 echo
// request and returns the round-trip time of the matching reply.
//
// # TCP
//
// Connections are found by 4-tuple, listeners by port with exact-address
// listeners taking precedence over wildcards. A segment for no connection
// and no listener is answered with a RST following RFC 9293 section
// 3.10.7.1. A listener keeps half-open connections up to
// min(somaxconn, tcp_max_syn_backlog) and established ones up to somaxconn
// in its accept queue; when the accept queue is full the handshake's final
// ACK is dropped (tcp_abort_on_overflow=0) and counted in ListenOverflows.
// When the SYN queue is full (or always, with tcp_syncookies=2) SYNs are
// answered statelessly with SYN cookies (tcp.SynCookieISN; window scale and
// SACK ride in the timestamp), and the ACK that returns a valid cookie
// creates the connection. TIME-WAIT sockets are limited by
// tcp_max_tw_buckets; a connection closed by the application that would be
// one orphan (FIN-WAIT, CLOSING, LAST-ACK) beyond tcp_max_orphans is reset
// (TCPAbortOnMemory); Config.MaxConns caps the connections (Dial fails with
// EMFILE, SYNs are dropped). tcp_mem (pages) is applied to the sum of the
// connections' receive, out-of-order and send buffer bytes (each
// out-of-order block charged 256 bytes more, and each connection's
// out-of-order queue capped by its receive buffer): above pressure it
// counts TCPMemoryPressures and no receive or send buffer grows by
// autotuning (Linux tcp_under_memory_pressure); above high incoming data is
// dropped (the ACK in it is kept; TCPMemoryDrops) and the peer
// retransmits, except, while a connection's unread data is below
// tcp_rmem[0], data for it if its out-of-order queue is below that too (so
// hoarders cannot starve the others, like Linux sk_rmem_schedule) or if
// the data fills the hole before that queue (Linux would prune the queue
// instead, reneging on its SACKs). Unlike Linux,
// buffers are not shrunk under pressure and Write does not block on the
// global limit (tcp_wmem bounds each send buffer).
//
// # TCP Fast Open
//
// TCP Fast Open (RFC 7413) follows Linux and interoperates with it
// (net.ipv4.tcp_fastopen bits: 0x1 client, 0x2 server, 0x4 client
// without cookie, 0x200 server without cookie, 0x400 every listener).
// A listener takes part after SetFastOpen(qlen), the TCP_FASTOPEN socket
// option: it grants 8-byte SipHash cookies (tcp_fastopen_key, random when
// unset; Stack.RotateFastOpenKey keeps the old key as a backup) and hands
// a connection whose SYN carried a valid cookie and data to Accept at once,
// its first Read returning the SYN data before the handshake completes. At
// most qlen such connections wait for their handshake; more Fast Open SYNs
// get a normal handshake (TCPFastOpenListenOverflow). A client dialing with
// Dialer.FastOpen asks for a cookie, caches it per server address with
// the server's MSS, and on later connections Dial returns at once and the
// first Write goes out in the SYN (TCP_FASTOPEN_CONNECT). Stats counts
// TCPFastOpenActive, ActiveFail, Passive, PassiveFail, CookieReqd and
// ListenOverflow like Linux.
//
// Connections are spread over 64 shards; every engine call for a
// connection happens under its shard's mutex, which also guards that
// shard's tcp.Counters. All protocol timers (retransmission, delayed ACK,
// keepalive, TIME-WAIT, pacing) go through one min-heap served by one timer
// goroutine per Stack: the number of goroutines and runtime timers does not
// grow with connections. A connection costs about 3 KB of heap when idle
// (measured by TestIdleConnectionsScale, engine buffers included). Only the
// standard time package is used for time, so tests can run the whole stack
// on testing/synctest's virtual clock.
//
// Local ports for Dial come from tcp.PortAllocator (RFC 6056 algorithm 4)
// over ip_local_port_range, skipping ports with listeners; a TIME-WAIT
// tuple is reused for an outgoing connection only as tcp_tw_reuse allows,
// and a new SYN above the old sequence space ends TIME-WAIT (RFC 6191
// style). ISNs are RFC 6528 (tcp.ISN).
//
// # Errors
//
// Errors are *net.OpError values, like the net package's: errors.Is
// works with syscall.ECONNREFUSED (a RST answered the SYN), ECONNRESET,
// ETIMEDOUT, os.ErrDeadlineExceeded (deadlines, and dial timeouts, which
// also match context.DeadlineExceeded) and net.ErrClosed (use after Close,
// or after Stack.Close).
//
// # TCPConn
//
// *TCPConn has the method set of *net.TCPConn: Read, Write, Close,
// CloseRead, CloseWrite, deadlines, SetKeepAlive, SetKeepAlivePeriod,
// SetKeepAliveConfig, SetLinger (0: Close resets), SetNoDelay,
// SetReadBuffer, SetWriteBuffer, ReadFrom, WriteTo (SyscallConn and File
// return errors: there is no kernel socket), plus Info (tcp_info-like),
// State and SetUserTimeout. Unlike the net package, Nagle's algorithm is on
// by default (Linux default; tcp.Config.NoDelay changes it) and keepalive
// is off unless asked for (Dialer.KeepAlive, SetKeepAlive).
//
// Stack.Connections lists connections and listeners like `ss -tai`.
// Stack.Close resets every connection, closes listeners and links, and
// stops the goroutines.
package ustack
