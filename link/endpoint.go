package link

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// Endpoint is a point-to-point link carrying IP packets.
type Endpoint interface {
	// MTU is the largest packet, in bytes, the link carries.
	MTU() int
	// ReadPacket blocks until one IP packet arrives and copies it into buf.
	// After Close it returns an error wrapping net.ErrClosed.
	ReadPacket(buf []byte) (int, error)
	// WritePacket sends one IP packet. The endpoint does not keep pkt after
	// returning.
	WritePacket(pkt []byte) error
	// Close releases the endpoint and unblocks pending reads.
	Close() error
}

// BatchReader is implemented by endpoints that can read many packets per
// call. ReadPackets blocks until at least one packet is available, then
// fills bufs[i] with packet i and sizes[i] with its length, for up to
// min(len(bufs), len(sizes)) packets, and returns how many it filled.
type BatchReader interface {
	ReadPackets(bufs [][]byte, sizes []int) (n int, err error)
}

// BatchWriter is implemented by endpoints that can write many packets per
// call. WritePackets returns how many packets of pkts it consumed (a packet
// dropped by a full drop-tail queue counts as consumed, as on a wire); when
// n < len(pkts), err says why pkts[n] was not.
type BatchWriter interface {
	WritePackets(pkts [][]byte) (n int, err error)
}

// ErrClosed is returned by operations on a closed endpoint.
// errors.Is(ErrClosed, net.ErrClosed) is true.
var ErrClosed = fmt.Errorf("link: endpoint closed: %w", net.ErrClosed)

// ErrPacketTooBig is returned when writing a packet longer than the MTU.
var ErrPacketTooBig = errors.New("link: packet larger than MTU")

// ErrShortBuffer is returned when a read buffer is too small for the packet;
// the packet is truncated to the buffer. errors.Is(ErrShortBuffer,
// io.ErrShortBuffer) is true.
var ErrShortBuffer = fmt.Errorf("link: read buffer too small, packet truncated: %w", io.ErrShortBuffer)
