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
// Main implements the "ustack copy" subcommand.
package tcpcopy
