package sim

import (
	"encoding/binary"
	"io"
	"time"
)

// linkTypeRaw is LINKTYPE_RAW: each record is a bare IPv4 or IPv6 packet.
const linkTypeRaw = 101

type pcapWriter struct {
	w   io.Writer
	err error
	hdr [16]byte
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

func (p *pcapWriter) write(t time.Time, pkt []byte) {
	if p == nil || p.err != nil {
		return
	}
	us := t.UnixMicro()
	binary.LittleEndian.PutUint32(p.hdr[0:], uint32(us/1e6))
	binary.LittleEndian.PutUint32(p.hdr[4:], uint32(us%1e6))
	binary.LittleEndian.PutUint32(p.hdr[8:], uint32(len(pkt)))
	binary.LittleEndian.PutUint32(p.hdr[12:], uint32(len(pkt)))
	if _, err := p.w.Write(p.hdr[:]); err != nil {
		p.err = err
		return
	}
	if _, err := p.w.Write(pkt); err != nil {
		p.err = err
	}
}
