package tcp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"time"
)

// ISNTick is the resolution of the clock component of ISN: like Linux
// (nanoseconds >> 6), the clock advances every 64 ns, about 15.6 million
// times per second, and wraps every 2^32 * 64 ns ~ 274.9 s. RFC 793 used a
// 4 µs clock; the faster clock keeps sequence numbers ahead of old
// duplicates on fast links, as Linux does.
const ISNTick = 64 * time.Nanosecond

// putTuple writes local addr (16 bytes), remote addr (16), local port (2),
// remote port (2) into b[:36]. IPv4 addresses are written in their
// IPv4-mapped IPv6 form.
func putTuple(b *[36]byte, t Tuple) {
	l := t.Local.Addr().As16()
	r := t.Remote.Addr().As16()
	copy(b[0:16], l[:])
	copy(b[16:32], r[:])
	binary.BigEndian.PutUint16(b[32:34], t.Local.Port())
	binary.BigEndian.PutUint16(b[34:36], t.Remote.Port())
}

// ISN returns an initial sequence number for the connection t as RFC 6528
// describes: ISN = M + F(localip, localport, remoteip, remoteport, key),
// where M is a clock ticking every ISNTick (64 ns) derived from now's Unix
// time in nanoseconds, and F is the low 32 bits of SipHash-2-4 keyed by key
// over the 4-tuple. key must be secret and random, chosen once per stack.
// The same t always sees increasing ISNs over time (so old segments of a
// previous incarnation stay behind), while other tuples' ISNs reveal
// nothing about t's. It does not allocate.
func ISN(key *[16]byte, t Tuple, now time.Time) uint32 {
	var b [36]byte
	putTuple(&b, t)
	f := uint32(SipHash24(key, b[:]))
	m := uint32(uint64(now.UnixNano()) / uint64(ISNTick))
	return m + f
}

// TSOffset returns the random-looking offset added to this host's TCP
// timestamp clock for connections between local and remote, so TSval does
// not expose uptime (Linux secure_tcp_ts_off, tcp_timestamps=1). It is the
// same for all connections between the two addresses, which keeps
// timestamps monotonic for PAWS across connections. Use a key distinct
// from the ISN key.
func TSOffset(key *[16]byte, local, remote netip.Addr) uint32 {
	var b [32]byte
	l := local.As16()
	r := remote.As16()
	copy(b[0:16], l[:])
	copy(b[16:32], r[:])
	return uint32(SipHash24(key, b[:]))
}

// PortAllocatorTableSize is the number of perturbation counters of a
// PortAllocator (RFC 6056 algorithm 4 "table_length").
const PortAllocatorTableSize = 4096

// PortAllocator chooses ephemeral local ports with RFC 6056 algorithm 4
// (double-hash port selection), with Linux's small random extra increments:
//
//	offset = F(local address, remote address, remote port, key)
//	index  = G(local address, remote address, remote port, key) mod table size
//	try ports low + (offset + table[index] + i) mod n, i = 0, 1, ...
//	on success table[index] += max(i, r) + 1 with r a keyed pseudo-random 0..7
//
// Destinations that share no table slot get independent port sequences; a
// peer sees its own ports advance by small, irregular steps. It is
// deterministic given the key and not safe for concurrent use.
type PortAllocator struct {
	low, n  int // first port, number of ports
	key     [16]byte
	table   [PortAllocatorTableSize]uint32
	counter uint64
}

// NewPortAllocator returns an allocator for the inclusive range portRange
// (Config.IPLocalPortRange, net.ipv4.ip_local_port_range), keyed by a
// secret random key.
func NewPortAllocator(key *[16]byte, portRange [2]int) (*PortAllocator, error) {
	if r := checkPortRange(portRange); r != "" {
		return nil, fmt.Errorf("tcp: ephemeral port range %d..%d: %s", portRange[0], portRange[1], r)
	}
	return &PortAllocator{low: portRange[0], n: portRange[1] - portRange[0] + 1, key: *key}, nil
}

// Range returns the inclusive port range.
func (a *PortAllocator) Range() (low, high uint16) {
	return uint16(a.low), uint16(a.low + a.n - 1)
}

// Next returns a local port for a connection to t.Remote from the address
// t.Local.Addr() (t.Local's port is ignored). inUse reports ports that
// cannot be used for this tuple; Next tries each port in the range at most
// once. When every port is in use the error wraps syscall.EADDRNOTAVAIL, as
// Linux connect(2) reports.
func (a *PortAllocator) Next(t Tuple, inUse func(port uint16) bool) (uint16, error) {
	var b [36]byte
	putTuple(&b, Tuple{Local: netip.AddrPortFrom(t.Local.Addr(), 0), Remote: t.Remote})
	h := SipHash24(&a.key, b[:])
	offset := uint32(h)
	index := (h >> 32) % PortAllocatorTableSize
	base := uint64(offset) + uint64(a.table[index])
	for i := 0; i < a.n; i++ {
		port := uint16(a.low + int((base+uint64(i))%uint64(a.n)))
		if inUse != nil && inUse(port) {
			continue
		}
		step := uint32(i)
		if r := a.extra(); r > step {
			step = r
		}
		a.table[index] += step + 1
		return port, nil
	}
	return 0, fmt.Errorf("tcp: no free ephemeral port in %d..%d for %v: %w", a.low, a.low+a.n-1, t.Remote, syscall.EADDRNOTAVAIL)
}

// extra returns a keyed pseudo-random value 0..7.
func (a *PortAllocator) extra() uint32 {
	var b [9]byte
	b[0] = 'p'
	binary.LittleEndian.PutUint64(b[1:], a.counter)
	a.counter++
	return uint32(SipHash24(&a.key, b[:]) & 7)
}
