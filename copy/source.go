package tcpcopy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Packet is one captured frame. Data is valid only until the next call to
// the Source's Next.
type Packet struct {
	Num      int       // 1-based packet number in the capture
	Time     time.Time // capture timestamp
	LinkType LinkType  // how Data starts
	Data     []byte    // captured bytes (may be shorter than OrigLen)
	OrigLen  int       // length on the wire
}

// Source yields captured packets in capture order.
type Source interface {
	// Next returns the next packet; io.EOF at the clean end of the capture.
	// Other errors are *InputError values naming the file and packet.
	Next() (Packet, error)
	// Name names the source in errors and reports (file name or interface).
	Name() string
	Close() error
}

// InputError is a capture that cannot be read further: a truncated or
// corrupt file, or an unsupported link type. Packet is the 1-based number of
// the packet being read (0 for the file header).
type InputError struct {
	File   string
	Packet int
	Err    error
}

func (e *InputError) Error() string {
	if e.Packet == 0 {
		return fmt.Sprintf("%s: file header: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: packet %d: %v", e.File, e.Packet, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// ErrUnsupportedLinkType is wrapped by errors about link types the decoder
// does not know.
var ErrUnsupportedLinkType = errors.New("unsupported link type")

// ErrNotCapture is wrapped when a file is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng file")

// countingReader counts the bytes read from a file for progress reports.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// FileSource reads a pcap or pcapng file (pcap may be gzip-compressed).
type FileSource struct {
	name   string
	f      *os.File
	pcap   *pcapgo.Reader
	ng     *pcapgo.NgReader
	link   LinkType
	num    int
	read   atomic.Int64 // bytes read from the file
	size   int64
	failed error
}

// OpenFile opens a capture file. The format (pcap, gzip'ed pcap, pcapng) is
// detected from its first bytes.
func OpenFile(name string) (*FileSource, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	s, err := NewReaderSource(name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.f, s.size = f, size
	return s, nil
}

// NewReaderSource reads a capture from r; name is used in errors.
func NewReaderSource(name string, r io.Reader) (*FileSource, error) {
	s := &FileSource{name: name}
	br := bufio.NewReaderSize(countingReader{r, &s.read}, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("%w: file is empty or shorter than a header", ErrNotCapture)
		}
		return nil, &InputError{File: name, Err: err}
	}
	if magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a {
		opts := pcapgo.DefaultNgReaderOptions
		opts.WantMixedLinkType = true
		ng, err := pcapgo.NewNgReader(br, opts)
		if err != nil {
			return nil, &InputError{File: name, Err: headerErr(err)}
		}
		s.ng = ng
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, &InputError{File: name, Err: headerErr(err)}
		}
		s.pcap = r
		s.link = LinkType(r.LinkType())
		if !s.link.Supported() {
			return nil, &InputError{File: name, Err: fmt.Errorf("%w %d (%s)", ErrUnsupportedLinkType, s.link, s.link)}
		}
	}
	return s, nil
}

func headerErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("truncated header: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%w: %v", ErrNotCapture, err)
}

// Name returns the file name.
func (s *FileSource) Name() string { return s.name }

// Progress returns bytes read so far and the file size (0 if unknown).
func (s *FileSource) Progress() (read, size int64) { return s.read.Load(), s.size }

// Close closes the file (if OpenFile opened it).
func (s *FileSource) Close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

// Next returns the next packet.
func (s *FileSource) Next() (Packet, error) {
	if s.failed != nil {
		return Packet{}, s.failed
	}
	s.num++
	var (
		data []byte
		ci   = struct {
			ts        time.Time
			caplen    int
			origlen   int
			ancillary []any
		}{}
		err error
	)
	if s.pcap != nil {
		d, c, e := s.pcap.ZeroCopyReadPacketData()
		data, ci.ts, ci.caplen, ci.origlen, err = d, c.Timestamp, c.CaptureLength, c.Length, e
	} else {
		d, c, e := s.ng.ZeroCopyReadPacketData()
		data, ci.ts, ci.caplen, ci.origlen, ci.ancillary, err = d, c.Timestamp, c.CaptureLength, c.Length, c.AncillaryData, e
	}
	if err != nil {
		if err == io.EOF {
			s.failed = io.EOF
			return Packet{}, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("file truncated in the middle of the packet: %w", io.ErrUnexpectedEOF)
		} else {
			err = fmt.Errorf("corrupt record: %w", err)
		}
		s.failed = &InputError{File: s.name, Packet: s.num, Err: err}
		return Packet{}, s.failed
	}
	link := s.link
	if s.ng != nil {
		if len(ci.ancillary) > 0 {
			if lt, ok := ci.ancillary[0].(layers.LinkType); ok {
				link = LinkType(lt)
			}
		}
		if !link.Supported() {
			s.failed = &InputError{File: s.name, Packet: s.num, Err: fmt.Errorf("%w %d (%s)", ErrUnsupportedLinkType, link, link)}
			return Packet{}, s.failed
		}
	}
	if len(data) != ci.caplen {
		s.failed = &InputError{File: s.name, Packet: s.num, Err: fmt.Errorf("file truncated in the middle of the packet: %w", io.ErrUnexpectedEOF)}
		return Packet{}, s.failed
	}
	return Packet{Num: s.num, Time: ci.ts, LinkType: link, Data: data, OrigLen: ci.origlen}, nil
}
