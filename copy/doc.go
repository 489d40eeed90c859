// Package tcpcopy replays captured TCP traffic against a live server, like
// tcpcopy, for any TCP protocol, and compares the server's answers with the
// captured ones.
//
// The package lives in the directory copy/ (import path
// github.com/ustack/ustack/copy) but is named tcpcopy, because a package
// named copy would shadow the builtin copy function in every file that
// imports it. Import it as
//
//	import tcpcopy "github.com/ustack/ustack/copy"
//
// The pipeline has four stages, each usable on its own:
//
//   - Source: packets from a pcap or pcapng file (OpenFile) or from a live
//     AF_PACKET capture on an interface (OpenLive). Link types Ethernet
//     (with VLAN tags), Linux cooked capture v1 and v2, raw IP and BSD
//     loopback (DLT_NULL / DLT_LOOP) are decoded to IPv4/IPv6 without
//     allocation, using the wire package's in-place views.
//   - Assembler: per connection (4-tuple, a new SYN starts a new one) it
//     rebuilds the client->server and server->client byte streams in order,
//     handling retransmissions, overlaps and reordering. Bytes the capture
//     lost are never glued over: they become a Gap on the Session, which is
//     marked. The client stream is cut into Exchanges (request, response)
//     wherever the server answered in between. A finished session is handed
//     out and forgotten, so memory follows the number of open connections,
//     not the size of the capture.
//   - Replayer: each captured session becomes a new connection to the
//     target (port mapping like tcpcopy's -x 80-127.0.0.1:8080) made by a
//     Dialer (kernel sockets by default). Requests are sent in captured
//     order, each after the target has answered as many bytes as the capture
//     shows (or went quiet), paced by the captured timing scaled by Speed.
//   - Report: per session the target's response bytes are compared with the
//     captured ones (identical, differs at offset N, shorter, longer; HTTP/1.x
//     status lines), time to first byte is compared (p50/p90/p99), and a text
//     or JSON summary is written.
//
// # Command line
//
// Main implements the "ustack copy" subcommand:
//
//	ustack copy -x 80-127.0.0.1:8080 traffic.pcapng            # real timing
//	ustack copy -x 80-10.0.0.5:80,443-10.0.0.5:8443 --fast --copies 3 --json a.pcap b.pcap
//	ustack copy -x 127.0.0.1:9000 --filter 'port 9000 and not client 10.1.0.0/16' dump.pcap
//	ustack copy -x 80-127.0.0.1:8080 -i eth0 --port 80 --duration 60s   # live capture, then replay
//	ustack copy --tun ustc0 --tun-setup 'ip addr add 10.77.0.1/24 dev $DEV; ip link set $DEV up; ip route add 10.0.0.0/8 dev $DEV' \
//	        -x 80-10.77.0.1:8080 dump.pcap                      # via the ustack stack, keeping client addresses
//
// # Semantics worth knowing
//
// A session is replayed when it has finished in the capture (FIN both
// ways, RST, --idle silence, or end of input), so a live capture replays
// each connection after it closes, not packet by packet. Sessions start at
// their captured offsets from the first packet, divided by --speed;
// --speed 0 (--fast) starts them as soon as --concurrency allows. Within a
// session, each request waits until the target has answered as many bytes
// as the capture shows, or has been silent for --wait; the whole response
// stream is compared, so a longer or shorter answer shows up as a
// difference at the offset where the streams part. At the end, the
// connection is half-closed if the captured client closed, and the replay
// waits (--wait) for the target's close to catch extra bytes.
//
// The default Dialer uses the kernel (net.Dial); copy/stackdial provides
// one over the ustack stack (--tun), which keeps the captured client
// addresses as sources.
package tcpcopy
