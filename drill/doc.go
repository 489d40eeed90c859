// Package drill runs packetdrill scripts against ustack's TCP engine.
//
// Scripts use packetdrill's language (github.com/google/packetdrill). The
// runner needs no kernel: it drives the sans-IO engine (package tcp) on a
// virtual clock, through a small socket layer of its own (file descriptors
// from 3, listen/accept queues, blocking and non-blocking calls). Inbound
// packets are built with package wire and parsed back before they reach
// the engine; every segment the engine emits is built into an IP packet,
// parsed, and matched against the next outbound line.
//
// # Supported grammar
//
// Times: absolute (0.100), relative (+.1), any (*), ranges for outbound
// packets (+.2~+.3), blocking calls (+.1...0.400 accept(...) = 4: with a
// relative start the end counts from the same base, so +0...0.100 blocks
// for 100 ms; an end written "+x" counts from the start). Relative times
// count from the previous line's scripted time (from the actual time after
// * or a range). Untimed `command` and %{ }% lines run in sequence.
//
// Packets: < (inject) and > (expect), an optional ECN marking ([noecn],
// [ect0], [ect1], [ect01], [ce]), flags (S . P F R U E W, or - for none),
// seq:end(len), ack N, win N, urg N and options <...> or a list of
// nop, eol, mss N, wscale N, sackOK, sack a:b [c:d ...], TS val X ecr Y,
// FO [hexcookie], FOEXP [hexcookie] (no cookie = cookie request).
// Inbound sequence numbers are relative to the remote ISN, outbound ones to
// ustack's ISN as named by the script's first SYN or SYN-ACK line; SACK
// blocks are relative to the sender of the data they cover. Outbound
// lines compare flags, sequence range, and, when written, ack, win, urg,
// ECN and the option bytes exactly (in the order written; <...> skips
// them). TS val of ustack is not compared: the offset is learned and added
// to later inbound TS ecr values. One expected data line may stand for
// several back-to-back MSS-sized segments (segmentation offload), PSH and
// FIN only on the last, unless --strict_segments.
//
// System calls: socket, bind, listen, accept, connect (blocking and
// non-blocking: EINPROGRESS, EALREADY, EISCONN, errors via SO_ERROR),
// read/recv, write/send, sendto with MSG_FASTOPEN (cookie request),
// shutdown, close (SO_LINGER 0 = RST), setsockopt/getsockopt
// (SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, SO_SNDBUF, SO_RCVBUF,
// SO_LINGER, SO_ERROR, TCP_NODELAY, TCP_KEEPIDLE/INTVL/CNT,
// TCP_USER_TIMEOUT, TCP_CONGESTION, TCP_FASTOPEN), fcntl F_GETFL/F_SETFL
// (O_NONBLOCK) and poll. Results are integers or -1 ERRNO (text).
//
// Shell lines: sysctl [-q] [-w] NAME=VALUE..., set_sysctls.py
// /proc/sys/NAME=VALUE..., sourcing a script (source F, . F, or F.sh)
// read line by line, $((arithmetic)), ip tcp_metrics flush, tc qdisc ...
// pfifo (no-op), restore scripts (no-op), redirections to /dev/null.
// Values go through tcp.Config.Set; hexadecimal values are accepted like
// Linux's proc handlers do. The TSO knobs tcp_tso_win_divisor and
// tcp_min_tso_segs, tcp_fack and tcp_ecn_option have no ustack
// counterpart: they are accepted and logged.
//
// Python blocks: lines of assert EXPR[, message] over tcpi_* fields of
// the connection under test (tcp.Info in Linux units: microseconds for
// RTTs and RTO, packets for cwnd), Linux constants (TCP_ESTABLISHED,
// TCPI_OPT_SACK, TCP_CA_Recovery, ...), integers, comparisons (chained),
// + - * / // % & | ~, and, or, not.
//
// Script options: --tolerance_usecs=N, --ip_version=ipv4|ipv6,
// --local_ip=A, --remote_ip=A, --strict_segments, --tcp_ts_tick_usecs=1000.
//
// Anything else fails the script with an error naming its line. After the
// last line, a packet ustack sent that no line expected is an error too.
//
// Default addresses are 192.168.0.1 (local) and 192.0.2.1 (remote), or
// fd3d:fa7b:d17d::1 and fd3d:a0b:17d6::1 in IPv6 mode; listeners use port
// 8080.
package drill
