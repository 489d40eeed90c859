// Package wire reads and writes the packet formats ustack speaks: IPv4,
// IPv6 (with extension headers), TCP (with all options ustack uses),
// ICMPv4 and ICMPv6, and the internet checksum. It holds no state.
//
// # Views
//
// A view is a named byte-slice type (IPv4, IPv6, TCP, ICMPv4, ICMPv6) laid
// over the packet bytes; nothing is copied or decoded up front. A Parse
// function checks that every field the accessors read lies inside the
// slice and that the length fields agree, then returns the view:
//
//	ip, err := wire.ParseIPv4(pkt)
//	if err != nil { drop }               // errors.Is(err, wire.ErrTruncated) ...
//	if !ip.ValidChecksum() || ip.IsFragment() { drop }
//	seg, err := wire.ParseTCP(ip.Payload())
//	if !seg.ValidChecksum(ip.PseudoHeaderSum()) { drop }
//	var opts wire.TCPOptions
//	seg.ParseOptions(&opts)               // cannot fail after ParseTCP
//
// Accessors (Src, Seq, Flags, ...) read straight from the slice; setters
// (SetTTL, SetSeq, ...) write into it, so a packet can be patched in place
// and its checksum fixed with ComputeChecksum or incrementally with
// ChecksumUpdate16/ChecksumUpdate32 (RFC 1624). Parsers never panic on any
// input; accessors on a slice that did not come from a parser may.
// Sub-slices returned by views (Payload, Options, Body) alias the packet.
//
// # Builders
//
// Builders (BuildIPv4, BuildIPv6, BuildTCP, BuildICMPv4Echo, ...) write a
// header into the caller's buffer and return the number of bytes written,
// or ErrBufferTooSmall. A typical TCP/IPv4 packet is built back to front
// in one buffer:
//
//	n := th.Len() + len(payload)
//	sum := wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, n)
//	wire.BuildTCP(buf[20:], &th, payload, sum)
//	wire.BuildIPv4(buf, &wire.IPv4Header{Protocol: wire.ProtoTCP, Src: src, Dst: dst, PayloadLen: n})
//
// Payloads may already sit where the builder would copy them; they are
// then not copied.
//
// # Allocation
//
// Neither parsing nor building allocates: views are slices, TCPOptions is
// a fixed-size value the caller owns, netip.Addr values are returned by
// value, and extension headers are walked with a value iterator. Tests
// check this with testing.AllocsPerRun.
//
// # Checksum
//
// ChecksumAdd sums input of 512 bytes and more in 64-byte blocks into
// four independent uint64 accumulators (32-bit words, carries kept in the
// high halves and folded once), which lets the CPU run the adds in
// parallel; shorter input and the tail use an 8-byte add-with-carry chain
// (math/bits.Add64). Measured on the 2-core dev box: 1500 bytes in ~73 ns,
// 65000 bytes in ~2.7 us (~24 GB/s), 20-64 byte headers in 7-8 ns; the
// 2-bytes-per-step RFC 1071 loop needs ~15x longer at 1500 bytes. See
// BenchmarkChecksum and BenchmarkChecksumVariants.
package wire
