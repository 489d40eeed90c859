package link

import (
	"encoding/binary"
	"io"
	"sync"
	"time"
)

// LinkTypeRaw is the pcap link type of raw IPv4/IPv6 packets.
const LinkTypeRaw = 101

// PcapSnapLen is the snapshot length written in the pcap header; longer
// packets are truncated in the capture (never on the link).
const PcapSnapLen = 262144

// Pcap returns an endpoint that passes every packet through to ep and writes
// a copy of each packet read or written to w as a pcap stream (LINKTYPE_RAW,
// nanosecond timestamps, little endian). The pcap file header is written
// before Pcap returns; its write error is returned. Later write errors stop
// the capture (traffic keeps flowing) and are reported by
// (*PcapEndpoint).Err. Writes to w are serialized by a mutex, so concurrent
// readers and writers of the endpoint are safe. The returned value is a
// *PcapEndpoint.
func Pcap(ep Endpoint, w io.Writer) (Endpoint, error) {
	p, err := NewPcapEndpoint(ep, w)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// NewPcapEndpoint is [Pcap] returning the concrete type.
func NewPcapEndpoint(ep Endpoint, w io.Writer) (*PcapEndpoint, error) {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d) // nanosecond magic
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	// thiszone, sigfigs = 0
	binary.LittleEndian.PutUint32(h[16:], PcapSnapLen)
	binary.LittleEndian.PutUint32(h[20:], LinkTypeRaw)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &PcapEndpoint{ep: ep, w: w}, nil
}

// PcapNG is [Pcap] writing the pcapng format instead: one section, one
// interface (LINKTYPE_RAW, nanosecond timestamps), and each packet marked
// inbound (read from ep) or outbound (written to it) in its epb_flags, which
// Wireshark shows as frame.packet_flags_direction. The returned value is a
// *PcapEndpoint.
func PcapNG(ep Endpoint, w io.Writer) (Endpoint, error) {
	var h [28 + 32]byte
	// Section header block.
	le := binary.LittleEndian
	le.PutUint32(h[0:], 0x0a0d0d0a)
	le.PutUint32(h[4:], 28)
	le.PutUint32(h[8:], 0x1a2b3c4d)
	le.PutUint16(h[12:], 1)
	le.PutUint16(h[14:], 0)
	le.PutUint64(h[16:], ^uint64(0)) // section length unknown
	le.PutUint32(h[24:], 28)
	// Interface description block with if_tsresol = 9 (ns).
	b := h[28:]
	le.PutUint32(b[0:], 1)
	le.PutUint32(b[4:], 32)
	le.PutUint16(b[8:], LinkTypeRaw)
	le.PutUint32(b[12:], PcapSnapLen)
	le.PutUint16(b[16:], 9) // if_tsresol
	le.PutUint16(b[18:], 1)
	b[20] = 9
	// b[24:28]: opt_endofopt
	le.PutUint32(b[28:], 32)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &PcapEndpoint{ep: ep, w: w, ng: true}, nil
}

// PcapEndpoint is the endpoint [Pcap] and [PcapNG] return.
type PcapEndpoint struct {
	ep  Endpoint
	ng  bool
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
}

var (
	_ Endpoint    = (*PcapEndpoint)(nil)
	_ BatchReader = (*PcapEndpoint)(nil)
	_ BatchWriter = (*PcapEndpoint)(nil)
)

// Err returns the first error writing the capture, if any.
func (p *PcapEndpoint) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// record writes one capture record for pkt.
func (p *PcapEndpoint) record(pkt []byte, inbound bool) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	if p.ng {
		p.recordNG(now, pkt, inbound)
		return
	}
	incl := min(len(pkt), PcapSnapLen)
	need := 16 + incl
	if cap(p.buf) < need {
		p.buf = make([]byte, need)
	}
	b := p.buf[:need]
	ns := now.UnixNano()
	binary.LittleEndian.PutUint32(b[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(b[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(b[8:], uint32(incl))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(pkt)))
	copy(b[16:], pkt[:incl])
	if _, err := p.w.Write(b); err != nil {
		p.err = err
	}
}

// recordNG writes an enhanced packet block. Called with p.mu held.
func (p *PcapEndpoint) recordNG(now time.Time, pkt []byte, inbound bool) {
	incl := min(len(pkt), PcapSnapLen)
	padded := (incl + 3) &^ 3
	total := 28 + padded + 8 + 4 + 4 // header, data, epb_flags, endofopt, trailer
	if cap(p.buf) < total {
		p.buf = make([]byte, total)
	}
	b := p.buf[:total]
	le := binary.LittleEndian
	ts := uint64(now.UnixNano())
	le.PutUint32(b[0:], 6)
	le.PutUint32(b[4:], uint32(total))
	le.PutUint32(b[8:], 0) // interface 0
	le.PutUint32(b[12:], uint32(ts>>32))
	le.PutUint32(b[16:], uint32(ts))
	le.PutUint32(b[20:], uint32(incl))
	le.PutUint32(b[24:], uint32(len(pkt)))
	copy(b[28:], pkt[:incl])
	clear(b[28+incl : 28+padded])
	o := b[28+padded:]
	le.PutUint16(o[0:], 2) // epb_flags
	le.PutUint16(o[2:], 4)
	dir := uint32(2) // outbound
	if inbound {
		dir = 1
	}
	le.PutUint32(o[4:], dir)
	le.PutUint32(o[8:], 0) // opt_endofopt
	le.PutUint32(o[12:], uint32(total))
	if _, err := p.w.Write(b); err != nil {
		p.err = err
	}
}

// MTU implements Endpoint.
func (p *PcapEndpoint) MTU() int { return p.ep.MTU() }

// ReadPacket implements Endpoint.
func (p *PcapEndpoint) ReadPacket(buf []byte) (int, error) {
	n, err := p.ep.ReadPacket(buf)
	if n > 0 {
		p.record(buf[:n], true)
	}
	return n, err
}

// ReadPackets implements BatchReader.
func (p *PcapEndpoint) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	var n int
	var err error
	if br, ok := p.ep.(BatchReader); ok {
		n, err = br.ReadPackets(bufs, sizes)
	} else if len(bufs) > 0 && len(sizes) > 0 {
		sizes[0], err = p.ep.ReadPacket(bufs[0])
		if sizes[0] > 0 || err == nil {
			n = 1
		}
	}
	for i := range n {
		p.record(bufs[i][:sizes[i]], true)
	}
	return n, err
}

// WritePacket implements Endpoint.
func (p *PcapEndpoint) WritePacket(pkt []byte) error {
	if len(pkt) > p.ep.MTU() {
		return ErrPacketTooBig
	}
	p.record(pkt, false)
	return p.ep.WritePacket(pkt)
}

// WritePackets implements BatchWriter.
func (p *PcapEndpoint) WritePackets(pkts [][]byte) (int, error) {
	if bw, ok := p.ep.(BatchWriter); ok {
		for _, pkt := range pkts {
			p.record(pkt, false)
		}
		return bw.WritePackets(pkts)
	}
	for i, pkt := range pkts {
		if err := p.WritePacket(pkt); err != nil {
			return i, err
		}
	}
	return len(pkts), nil
}

// Close implements Endpoint; it closes the wrapped endpoint, not w.
func (p *PcapEndpoint) Close() error { return p.ep.Close() }
