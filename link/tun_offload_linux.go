//go:build linux

package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// virtio_net_hdr as the TUN driver prepends it with IFF_VNET_HDR.
const (
	vnetHdrLen       = 10
	vnetNeedsCsum    = 1
	vnetGSONone      = 0
	vnetGSOTCPv4     = 1
	vnetGSOTCPv6     = 4
	vnetGSOECN       = 0x80
	tunOffloadBufLen = 1 << 17
)

// TUNStats counts offload work (zero without TUNConfig.Offload).
type TUNStats struct {
	Reads              uint64 // read system calls that returned a packet
	GSOPackets         uint64 // reads that carried a TCP super-packet
	Segments           uint64 // packets handed out after splitting
	ChecksumsCompleted uint64 // partial checksums completed
	Malformed          uint64 // packets dropped for a bad offload header
	GSOWrites          uint64 // super-packets written (WritePackets coalescing)
	CoalescedSegments  uint64 // segments merged into those super-packets
}

// Stats returns the offload counters.
func (t *TUN) Stats() TUNStats {
	t.rmu.Lock()
	st := t.stats
	t.rmu.Unlock()
	t.wmu.Lock()
	st.GSOWrites, st.CoalescedSegments = t.wstats.GSOWrites, t.wstats.CoalescedSegments
	t.wmu.Unlock()
	return st
}

// readOffload is ReadPackets for a TUN with offloads on: the kernel hands
// over TCP super-packets (up to 64 KB) with one read, split here into
// MTU-sized segments with exact checksums. Called with t.rmu held.
func (t *TUN) readOffload(bufs [][]byte, sizes []int) (int, error) {
	for t.qhead == len(t.queue) {
		t.queue, t.qhead = t.queue[:0], 0
		n, err := t.f.Read(t.rbuf)
		if err != nil {
			if t.closed.Load() || errors.Is(err, os.ErrClosed) {
				return 0, ErrClosed
			}
			return 0, fmt.Errorf("link: read %s: %w", t.name, err)
		}
		t.stats.Reads++
		t.process(t.rbuf[:n])
	}
	i := 0
	var err error
	for ; i < len(bufs) && i < len(sizes) && t.qhead < len(t.queue); i++ {
		seg := t.queue[t.qhead]
		t.queue[t.qhead] = nil
		t.qhead++
		sizes[i] = copy(bufs[i], seg)
		t.free = append(t.free, seg)
		if sizes[i] < len(seg) {
			err = ErrShortBuffer
			i++
			break
		}
	}
	return i, err
}

func (t *TUN) segBuf(n int) []byte {
	var b []byte
	if k := len(t.free); k > 0 {
		b = t.free[k-1]
		t.free = t.free[:k-1]
	}
	if cap(b) < n {
		b = make([]byte, n, max(n, 2048))
	}
	return b[:n]
}

// process turns one vnet-header packet into queued plain packets.
func (t *TUN) process(p []byte) {
	if len(p) < vnetHdrLen+1 {
		t.stats.Malformed++
		return
	}
	le := binary.LittleEndian
	flags, gsoType := p[0], p[1]&^vnetGSOECN
	gsoSize := int(le.Uint16(p[4:]))
	csumStart, csumOff := int(le.Uint16(p[6:])), int(le.Uint16(p[8:]))
	pkt := p[vnetHdrLen:]
	switch gsoType {
	case vnetGSONone:
		seg := t.segBuf(len(pkt))
		copy(seg, pkt)
		if flags&vnetNeedsCsum != 0 {
			if csumStart+csumOff+2 > len(seg) {
				t.stats.Malformed++
				t.free = append(t.free, seg)
				return
			}
			// The field holds the pseudo-header sum; fold in the rest.
			c := ^fold(sumBytes(seg[csumStart:], 0))
			if c == 0 && isUDP(seg) { // in UDP, 0 means no checksum
				c = 0xffff
			}
			binary.BigEndian.PutUint16(seg[csumStart+csumOff:], c)
			t.stats.ChecksumsCompleted++
		}
		t.queue = append(t.queue, seg)
		t.stats.Segments++
	case vnetGSOTCPv4, vnetGSOTCPv6:
		t.stats.GSOPackets++
		if !t.splitTCP(pkt, gsoSize, csumStart, gsoType == vnetGSOTCPv4) {
			t.stats.Malformed++
		}
	default:
		t.stats.Malformed++
	}
}

func isUDP(p []byte) bool {
	switch p[0] >> 4 {
	case 4:
		return len(p) >= 20 && p[9] == 17
	case 6:
		return len(p) >= 40 && p[6] == 17
	}
	return false
}

// splitTCP cuts a TCP super-packet into segments of mss payload bytes.
func (t *TUN) splitTCP(pkt []byte, mss, l4 int, wantV4 bool) bool {
	be := binary.BigEndian
	// Linux TCP never segments below 48 bytes (TCP_MIN_SND_MSS); refusing
	// smaller sizes bounds the work one read can cause.
	if len(pkt) < 1 || mss < 48 {
		return false
	}
	v4 := pkt[0]>>4 == 4
	if v4 != wantV4 {
		return false
	}
	switch {
	case v4:
		if len(pkt) < 20 || int(pkt[0]&0xf)*4 != l4 || pkt[9] != 6 {
			return false
		}
	case pkt[0]>>4 == 6:
		if l4 < 40 {
			return false
		}
	default:
		return false
	}
	if l4+20 > len(pkt) {
		return false
	}
	hdr := l4 + int(pkt[l4+12]>>4)*4
	if hdr < l4+20 || hdr > len(pkt) {
		return false
	}
	payload := pkt[hdr:]
	seq := be.Uint32(pkt[l4+4:])
	tcpFlags := pkt[l4+13]
	var id uint16
	var pseudo uint32
	if v4 {
		id = be.Uint16(pkt[4:])
		pseudo = sumBytes(pkt[12:20], 0)
	} else {
		pseudo = sumBytes(pkt[8:40], 0)
	}
	pseudo += 6
	for i, off := 0, 0; off < len(payload) || off == 0; i, off = i+1, off+mss {
		end := min(off+mss, len(payload))
		seg := t.segBuf(hdr + end - off)
		copy(seg, pkt[:hdr])
		copy(seg[hdr:], payload[off:end])
		be.PutUint32(seg[l4+4:], seq+uint32(off))
		fl := tcpFlags
		if off > 0 {
			fl &^= 0x80 // CWR only on the first
		}
		if end < len(payload) {
			fl &^= 0x01 | 0x08 // FIN and PSH only on the last
		}
		seg[l4+13] = fl
		if v4 {
			be.PutUint16(seg[2:], uint16(len(seg)))
			be.PutUint16(seg[4:], id+uint16(i))
			seg[10], seg[11] = 0, 0
			be.PutUint16(seg[10:], ^fold(sumBytes(seg[:l4], 0)))
		} else {
			be.PutUint16(seg[4:], uint16(len(seg)-40))
		}
		seg[l4+16], seg[l4+17] = 0, 0
		be.PutUint16(seg[l4+16:], ^fold(sumBytes(seg[l4:], pseudo+uint32(len(seg)-l4))))
		t.queue = append(t.queue, seg)
		t.stats.Segments++
		if end == len(payload) {
			break
		}
	}
	return true
}

// sumBytes adds b as big-endian 16-bit words to s (ones' complement, unfolded).
func sumBytes(b []byte, s uint32) uint32 {
	s64 := uint64(s)
	for len(b) >= 8 {
		s64 += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s64 += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s64 += uint64(b[0]) << 8
	}
	for s64>>32 != 0 {
		s64 = s64>>32 + s64&0xffffffff
	}
	return uint32(s64)
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// writeOffload prepends an empty vnet header (no offload requested: the
// packet carries complete checksums).
func (t *TUN) writeOffload(pkt []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.writeVnet(pkt)
}

// writePacketsOffload writes pkts, merging runs of consecutive TCP segments
// of one flow (same addresses, ports, ACK, window and options, contiguous
// sequence numbers, equal payload sizes but for a shorter last one, plain
// ACK flags with PSH allowed on the last) into one super-packet the kernel
// takes in a single write.
func (t *TUN) writePacketsOffload(pkts [][]byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	for i := 0; i < len(pkts); {
		if len(pkts[i]) > t.mtu {
			return i, ErrPacketTooBig
		}
		j := i + 1
		l4, hdr, ok := tcpHeaderLens(pkts[i])
		mss := len(pkts[i]) - hdr
		if ok && mss > 0 && pkts[i][l4+13] == 0x10 {
			total := len(pkts[i])
			for j < len(pkts) && total+len(pkts[j])-hdr <= 65535 &&
				canCoalesce(pkts[i], pkts[j], l4, hdr, mss, uint32(total-hdr)) {
				total += len(pkts[j]) - hdr
				j++
				if len(pkts[j-1])-hdr < mss || pkts[j-1][l4+13] != 0x10 {
					break // a short or PSH segment ends the run
				}
			}
		}
		var err error
		if j == i+1 {
			err = t.writeVnet(pkts[i])
		} else {
			err = t.writeSuper(pkts[i:j], l4, hdr, mss)
		}
		if err != nil {
			if t.closed.Load() || errors.Is(err, os.ErrClosed) {
				return i, ErrClosed
			}
			return i, fmt.Errorf("link: write %s: %w", t.name, err)
		}
		i = j
	}
	return len(pkts), nil
}

// tcpHeaderLens returns the TCP offset and the header length of an
// option-less IPv4 or plain IPv6 TCP packet.
func tcpHeaderLens(p []byte) (l4, hdr int, ok bool) {
	switch {
	case len(p) >= 40 && p[0] == 0x45 && p[9] == 6 && binary.BigEndian.Uint16(p[6:])&0x3fff == 0:
		l4 = 20
	case len(p) >= 60 && p[0]>>4 == 6 && p[6] == 6:
		l4 = 40
	default:
		return 0, 0, false
	}
	hdr = l4 + int(p[l4+12]>>4)*4
	return l4, hdr, hdr >= l4+20 && hdr <= len(p)
}

func canCoalesce(first, p []byte, l4, hdr, mss int, off uint32) bool {
	be := binary.BigEndian
	if len(p) <= hdr || len(p)-hdr > mss || len(p) < hdr {
		return false
	}
	if fl := p[l4+13]; fl != 0x10 && fl != 0x18 {
		return false
	}
	if l4 == 20 {
		// IPv4: equal but for total length, ID and checksum.
		if p[0] != first[0] || p[1] != first[1] || !bytes.Equal(p[6:10], first[6:10]) || !bytes.Equal(p[12:20], first[12:20]) {
			return false
		}
	} else if !bytes.Equal(p[0:4], first[0:4]) || !bytes.Equal(p[6:40], first[6:40]) {
		return false
	}
	// TCP: same ports, ack, data offset, window, urgent and options.
	if !bytes.Equal(p[l4:l4+4], first[l4:l4+4]) || !bytes.Equal(p[l4+8:l4+13], first[l4+8:l4+13]) ||
		!bytes.Equal(p[l4+14:l4+16], first[l4+14:l4+16]) || !bytes.Equal(p[l4+18:hdr], first[l4+18:hdr]) {
		return false
	}
	return be.Uint32(p[l4+4:]) == be.Uint32(first[l4+4:])+off
}

// writeSuper writes segs as one GSO super-packet. Called with t.wmu held.
func (t *TUN) writeSuper(segs [][]byte, l4, hdr, mss int) error {
	need := vnetHdrLen + hdr
	for _, s := range segs {
		need += len(s) - hdr
	}
	if cap(t.wbuf) < need {
		t.wbuf = make([]byte, need)
	}
	b := buildSuper(t.wbuf[:need], segs, l4, hdr, mss)
	if _, err := t.f.Write(b); err != nil {
		return err
	}
	t.wstats.GSOWrites++
	t.wstats.CoalescedSegments += uint64(len(segs))
	return nil
}

// buildSuper writes the vnet header and super-packet for segs into b, which
// must be exactly long enough.
func buildSuper(b []byte, segs [][]byte, l4, hdr, mss int) []byte {
	be, le := binary.BigEndian, binary.LittleEndian
	total := len(b) - vnetHdrLen
	h := b[:vnetHdrLen]
	h[0] = vnetNeedsCsum
	h[1] = vnetGSOTCPv4
	if l4 == 40 {
		h[1] = vnetGSOTCPv6
	}
	le.PutUint16(h[2:], uint16(hdr))
	le.PutUint16(h[4:], uint16(mss))
	le.PutUint16(h[6:], uint16(l4))
	le.PutUint16(h[8:], 16)
	p := b[vnetHdrLen:]
	copy(p, segs[0][:hdr])
	off := hdr
	for _, s := range segs {
		off += copy(p[off:], s[hdr:])
	}
	last := segs[len(segs)-1]
	p[l4+13] = last[l4+13] // PSH from the last segment
	var pseudo uint32
	if l4 == 20 {
		be.PutUint16(p[2:], uint16(total))
		p[10], p[11] = 0, 0
		be.PutUint16(p[10:], ^fold(sumBytes(p[:20], 0)))
		pseudo = sumBytes(p[12:20], 0)
	} else {
		be.PutUint16(p[4:], uint16(total-40))
		pseudo = sumBytes(p[8:40], 0)
	}
	// Partial checksum (CHECKSUM_PARTIAL convention): the folded, not
	// complemented, pseudo-header sum over the whole TCP length; the kernel
	// adjusts it per segment and adds the data.
	be.PutUint16(p[l4+16:], fold(pseudo+6+uint32(total-l4)))
	return b
}

// writeVnet writes pkt behind an empty vnet header. Called with t.wmu held.
func (t *TUN) writeVnet(pkt []byte) error {
	need := vnetHdrLen + len(pkt)
	if cap(t.wbuf) < need {
		t.wbuf = make([]byte, need, max(need, 2048))
	}
	b := t.wbuf[:need]
	clear(b[:vnetHdrLen])
	copy(b[vnetHdrLen:], pkt)
	_, err := t.f.Write(b)
	return err
}
