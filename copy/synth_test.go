package tcpcopy

import (
	"encoding/binary"
	"io"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/ustack/ustack/wire"
)

// SynthFlow builds the IP packets of one TCP connection, for synthetic
// captures (tests, benchmarks, fuzz seeds). Seq numbers advance as data is
// built; nothing is written anywhere until the packets are handed to a
// CaptureWriter.
type SynthFlow struct {
	Client, Server netip.AddrPort
	CSeq, SSeq     uint32 // next sequence number of each side
	buf            []byte
}

// NewSynthFlow starts a flow with the given initial sequence numbers.
func NewSynthFlow(client, server netip.AddrPort, ciss, siss uint32) *SynthFlow {
	return &SynthFlow{Client: client, Server: server, CSeq: ciss, SSeq: siss}
}

// Segment builds one segment from dir's side with explicit seq/ack.
func (f *SynthFlow) Segment(dir Dir, seq, ack uint32, flags uint8, payload []byte) []byte {
	src, dst := f.Client, f.Server
	if dir == ServerToClient {
		src, dst = dst, src
	}
	tcpLen := wire.TCPMinHeaderLen + len(payload)
	buf := make([]byte, wire.IPv6HeaderLen+tcpLen)
	var hl int
	var err error
	if src.Addr().Is4() {
		hl, err = wire.BuildIPv4(buf, &wire.IPv4Header{Protocol: wire.ProtoTCP, TTL: 64, DF: true, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: tcpLen})
	} else {
		hl, err = wire.BuildIPv6(buf, &wire.IPv6Header{NextHeader: wire.ProtoTCP, HopLimit: 64, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: tcpLen})
	}
	if err != nil {
		panic(err) // programming error in a synthetic capture
	}
	n, err := wire.BuildTCP(buf[hl:], &wire.TCPHeader{SrcPort: src.Port(), DstPort: dst.Port(), Seq: seq, Ack: ack, Flags: flags, Window: 65535},
		payload, wire.PseudoHeaderSum(src.Addr(), dst.Addr(), wire.ProtoTCP, tcpLen))
	if err != nil {
		panic(err)
	}
	return buf[:hl+n]
}

// Handshake returns SYN, SYN-ACK, ACK.
func (f *SynthFlow) Handshake() [][]byte {
	p := [][]byte{
		f.Segment(ClientToServer, f.CSeq, 0, wire.TCPFlagSYN, nil),
		f.Segment(ServerToClient, f.SSeq, f.CSeq+1, wire.TCPFlagSYN|wire.TCPFlagACK, nil),
	}
	f.CSeq++
	f.SSeq++
	p = append(p, f.Segment(ClientToServer, f.CSeq, f.SSeq, wire.TCPFlagACK, nil))
	return p
}

// Data returns segments of at most mss bytes carrying data from dir's side
// and advances that side's sequence number.
func (f *SynthFlow) Data(dir Dir, data []byte, mss int) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(len(data), mss)
		if dir == ClientToServer {
			out = append(out, f.Segment(dir, f.CSeq, f.SSeq, wire.TCPFlagACK|wire.TCPFlagPSH, data[:n]))
			f.CSeq += uint32(n)
		} else {
			out = append(out, f.Segment(dir, f.SSeq, f.CSeq, wire.TCPFlagACK|wire.TCPFlagPSH, data[:n]))
			f.SSeq += uint32(n)
		}
		data = data[n:]
	}
	return out
}

// Ack returns a pure ACK from dir's side.
func (f *SynthFlow) Ack(dir Dir) []byte {
	if dir == ClientToServer {
		return f.Segment(dir, f.CSeq, f.SSeq, wire.TCPFlagACK, nil)
	}
	return f.Segment(dir, f.SSeq, f.CSeq, wire.TCPFlagACK, nil)
}

// Close returns FIN from the client, FIN from the server, last ACK.
func (f *SynthFlow) Close() [][]byte {
	p := [][]byte{f.Segment(ClientToServer, f.CSeq, f.SSeq, wire.TCPFlagFIN|wire.TCPFlagACK, nil)}
	f.CSeq++
	p = append(p, f.Segment(ServerToClient, f.SSeq, f.CSeq, wire.TCPFlagFIN|wire.TCPFlagACK, nil))
	f.SSeq++
	p = append(p, f.Segment(ClientToServer, f.CSeq, f.SSeq, wire.TCPFlagACK, nil))
	return p
}

// CaptureWriter writes IP packets into a pcap file with a chosen link type,
// adding the link-layer header.
type CaptureWriter struct {
	w    *pcapgo.Writer
	ng   *pcapgo.NgWriter
	link LinkType
	buf  []byte
}

// NewCaptureWriter writes a pcap (or pcapng if ng) header for link type l.
func NewCaptureWriter(w io.Writer, l LinkType, ng bool) (*CaptureWriter, error) {
	cw := &CaptureWriter{link: l}
	if ng {
		nw, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{Name: "synth", LinkType: layers.LinkType(l), SnapLength: 262144}, pcapgo.DefaultNgWriterOptions)
		if err != nil {
			return nil, err
		}
		cw.ng = nw
		return cw, nil
	}
	cw.w = pcapgo.NewWriterNanos(w)
	if err := cw.w.WriteFileHeader(262144, layers.LinkType(l)); err != nil {
		return nil, err
	}
	return cw, nil
}

// Frame wraps an IP packet in the writer's link-layer header.
func (cw *CaptureWriter) Frame(ip []byte) []byte {
	v6 := len(ip) > 0 && ip[0]>>4 == 6
	et := uint16(etherTypeIPv4)
	if v6 {
		et = etherTypeIPv6
	}
	b := cw.buf[:0]
	switch cw.link {
	case LinkEthernet:
		b = append(b, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1)
		b = binary.BigEndian.AppendUint16(b, et)
	case LinkLinuxSLL:
		b = append(b, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 1, 0, 0)
		b = binary.BigEndian.AppendUint16(b, et)
	case LinkSLL2:
		b = binary.BigEndian.AppendUint16(b, et)
		b = append(b, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 1, 0, 0)
	case LinkNull:
		fam := uint32(2)
		if v6 {
			fam = 10
		}
		b = binary.LittleEndian.AppendUint32(b, fam)
	case LinkLoop:
		fam := uint32(2)
		if v6 {
			fam = 24
		}
		b = binary.BigEndian.AppendUint32(b, fam)
	}
	b = append(b, ip...)
	cw.buf = b
	return b
}

// Write writes one IP packet captured at ts.
func (cw *CaptureWriter) Write(ts time.Time, ip []byte) error {
	frame := cw.Frame(ip)
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}
	if cw.ng != nil {
		return cw.ng.WritePacket(ci, frame)
	}
	return cw.w.WritePacket(ci, frame)
}

// Flush flushes a pcapng writer's buffer (pcap writes through).
func (cw *CaptureWriter) Flush() error {
	if cw.ng != nil {
		return cw.ng.Flush()
	}
	return nil
}
