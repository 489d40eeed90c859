package sim

import (
	"encoding/binary"
	"io"
	"time"
)

// linkTypeRaw is LINKTYPE_RAW: each record is a bare IPv4 or IPv6 packet.
const linkTypeRaw = 101

// pcapWriter writes the packets hosts transmit, as pcap or as pcapng. In
// pcapng each host is an interface named after it (if_name), so Wireshark
// shows which host sent a packet (frame.interface_name).
type pcapWriter struct {
	w   io.Writer
	err error
	ng  bool
	ifc map[*Host]uint32 // pcapng interface IDs
	hdr [28]byte
}

func newPcapWriter(w io.Writer) (*pcapWriter, error) {
	var gh [24]byte
	binary.LittleEndian.PutUint32(gh[0:], 0xa1b2c3d4) // microsecond timestamps
	binary.LittleEndian.PutUint16(gh[4:], 2)
	binary.LittleEndian.PutUint16(gh[6:], 4)
	binary.LittleEndian.PutUint32(gh[16:], 65535)
	binary.LittleEndian.PutUint32(gh[20:], linkTypeRaw)
	if _, err := w.Write(gh[:]); err != nil {
		return nil, err
	}
	return &pcapWriter{w: w}, nil
}

// newPcapNGWriter writes a pcapng section header; interfaces follow as
// hosts first transmit.
func newPcapNGWriter(w io.Writer) (*pcapWriter, error) {
	var shb [28]byte
	le := binary.LittleEndian
	le.PutUint32(shb[0:], 0x0a0d0d0a)
	le.PutUint32(shb[4:], 28)
	le.PutUint32(shb[8:], 0x1a2b3c4d)
	le.PutUint16(shb[12:], 1)          // version 1.0
	le.PutUint64(shb[16:], ^uint64(0)) // section length unknown
	le.PutUint32(shb[24:], 28)
	if _, err := w.Write(shb[:]); err != nil {
		return nil, err
	}
	return &pcapWriter{w: w, ng: true, ifc: map[*Host]uint32{}}, nil
}

func pad4(n int) int { return (n + 3) &^ 3 }

// iface returns h's pcapng interface ID, writing its interface
// description block (LINKTYPE_RAW, nanosecond timestamps, if_name) first
// if h has not transmitted yet.
func (p *pcapWriter) iface(h *Host) uint32 {
	if id, ok := p.ifc[h]; ok {
		return id
	}
	id := uint32(len(p.ifc))
	p.ifc[h] = id
	name := h.Name
	if len(name) > 200 {
		name = name[:200]
	}
	n := 16 + 8 + 4 + pad4(len(name)) + 4 + 4 // header, if_tsresol, if_name, opt_endofopt, trailer
	b := make([]byte, n)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 1)
	le.PutUint32(b[4:], uint32(n))
	le.PutUint16(b[8:], linkTypeRaw)
	le.PutUint32(b[12:], 65535)
	o := b[16:]
	le.PutUint16(o[0:], 9) // if_tsresol: 10^-9 s
	le.PutUint16(o[2:], 1)
	o[4] = 9
	o = o[8:]
	le.PutUint16(o[0:], 2) // if_name
	le.PutUint16(o[2:], uint16(len(name)))
	copy(o[4:], name)
	// opt_endofopt is the zero bytes left before the trailer.
	le.PutUint32(b[n-4:], uint32(n))
	if _, err := p.w.Write(b); err != nil {
		p.err = err
	}
	return id
}

// write records pkt as transmitted by h at t.
func (p *pcapWriter) write(h *Host, t time.Time, pkt []byte) {
	if p == nil || p.err != nil {
		return
	}
	le := binary.LittleEndian
	if p.ng {
		id := p.iface(h)
		if p.err != nil {
			return
		}
		n := 28 + pad4(len(pkt)) + 4
		ns := uint64(t.UnixNano())
		le.PutUint32(p.hdr[0:], 6) // enhanced packet block
		le.PutUint32(p.hdr[4:], uint32(n))
		le.PutUint32(p.hdr[8:], id)
		le.PutUint32(p.hdr[12:], uint32(ns>>32))
		le.PutUint32(p.hdr[16:], uint32(ns))
		le.PutUint32(p.hdr[20:], uint32(len(pkt)))
		le.PutUint32(p.hdr[24:], uint32(len(pkt)))
		var tail [8]byte // padding and the trailing length
		pad := pad4(len(pkt)) - len(pkt)
		le.PutUint32(tail[pad:], uint32(n))
		for _, b := range [][]byte{p.hdr[:28], pkt, tail[:pad+4]} {
			if _, err := p.w.Write(b); err != nil {
				p.err = err
				return
			}
		}
		return
	}
	us := t.UnixMicro()
	le.PutUint32(p.hdr[0:], uint32(us/1e6))
	le.PutUint32(p.hdr[4:], uint32(us%1e6))
	le.PutUint32(p.hdr[8:], uint32(len(pkt)))
	le.PutUint32(p.hdr[12:], uint32(len(pkt)))
	if _, err := p.w.Write(p.hdr[:16]); err != nil {
		p.err = err
		return
	}
	if _, err := p.w.Write(pkt); err != nil {
		p.err = err
	}
}
