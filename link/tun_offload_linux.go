//go:build linux

package link

import (
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
}

// Stats returns the offload counters.
func (t *TUN) Stats() TUNStats {
	t.rmu.Lock()
	defer t.rmu.Unlock()
	return t.stats
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
