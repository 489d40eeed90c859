// Package link provides the link endpoints ustack sends and receives IP
// packets through.
//
// An [Endpoint] moves whole IP packets (no link-layer header). Endpoints that
// can move many packets per call also implement [BatchReader] and/or
// [BatchWriter]; the stack detects these with a type assertion.
//
// Endpoints:
//
//   - [Pipe]: an in-memory pair of endpoints, the fast path for tests and
//     benchmarks. Each direction is a bounded FIFO of pooled buffers
//     (default [DefaultPipeQueueLen] packets); a full queue drops the new
//     packet (drop-tail, like a router queue) unless [PipeConfig.Backpressure]
//     asks writers to block instead. See [NewPipe].
//   - [OpenTUN]: a Linux TUN device (IFF_TUN|IFF_NO_PI). Reads go through the
//     Go runtime poller so Close unblocks a pending ReadPacket.
//     [OpenTUNConfig] with Offload adds IFF_VNET_HDR with TSO and checksum
//     offload: reads split the kernel's TCP super-packets into MTU-sized
//     segments (exact checksums), and WritePackets merges runs of segments
//     of one TCP flow into super-packets, so far fewer system calls move the
//     same bytes. Callers still see plain IP packets of at most MTU bytes.
//   - [Impair]: wraps an endpoint and impairs the packets written to it
//     (delay, jitter, loss, reordering, duplication, corruption, a rate-limited
//     bottleneck with a tail-drop queue). The decisions come from [Impairer],
//     a deterministic, goroutine-free core driven by a seeded PCG generator
//     that the simulator reuses on virtual time.
//   - [Pcap]: a tap writing every packet read or written to a pcap stream
//     (LINKTYPE_RAW, nanosecond timestamps) that tcpdump and Wireshark read;
//     [PcapNG] writes pcapng and marks each packet inbound or outbound.
//
// Wrappers compose. Impair impairs only what is written to it (egress);
// wrap both ends of a pipe to impair both directions. Pcap(Impair(ep), w)
// captures packets as the application wrote them, Impair(Pcap(ep, w))
// captures them as they left the impairment (after loss, delay, ...).
//
// Under testing/synctest, create Impair endpoints inside the bubble: their
// channels and timers must belong to it for virtual time to advance.
//
// The deterministic core for a simulator:
//
//	im := link.NewImpairer(link.Impairment{Delay: 10 * time.Millisecond, Loss: 0.01, Seed: 1})
//	d := im.Decide(now, len(pkt)) // now: virtual time, non-decreasing
//	for _, at := range d.Deliveries() { // 0, 1 or 2 copies
//		cp := append([]byte(nil), pkt...)
//		d.Apply(cp) // flips the decided bit if d.Corrupt
//		schedule(at, cp)
//	}
//
// Errors: every operation on a closed endpoint returns an error for which
// errors.Is(err, net.ErrClosed) holds.
package link
