//go:build linux

package link

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// TUN is a Linux TUN device endpoint (IFF_TUN|IFF_NO_PI: whole IP packets,
// no packet-information header).
type TUN struct {
	f       *os.File
	rc      syscall.RawConn
	name    string
	mtu     int
	offload bool
	closed  atomic.Bool

	// Offload mode only.
	rmu    sync.Mutex
	rbuf   []byte
	queue  [][]byte // segments split from the last read
	qhead  int
	free   [][]byte
	stats  TUNStats
	one    [1][]byte // ReadPacket's buffer, under rmu
	wmu    sync.Mutex
	wbuf   []byte
	wstats TUNStats
}

// TUNConfig configures [OpenTUNConfig].
type TUNConfig struct {
	Name string // interface name or pattern ("tun%d"); "" lets the kernel pick
	MTU  int
	// Offload turns on IFF_VNET_HDR with checksum and TCP segmentation
	// offload (TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6): the kernel may hand over
	// TCP super-packets of up to 64 KB in one read, which the endpoint
	// splits into MTU-sized segments with exact checksums, and packets with
	// partial checksums, which it completes. Readers see ordinary packets;
	// fewer system calls are made. Writes are sent without offload.
	Offload bool
}

var (
	_ Endpoint    = (*TUN)(nil)
	_ BatchReader = (*TUN)(nil)
	_ BatchWriter = (*TUN)(nil)
)

// OpenTUN creates (or attaches to) the TUN device name ("" or a pattern
// like "tun%d" lets the kernel pick) and sets its MTU. The device stays
// down and unconfigured; the returned endpoint is a *TUN. The descriptor is
// non-blocking and served by the Go runtime poller, so Close unblocks a
// pending ReadPacket. The device keeps working if it is moved to another
// network namespace.
func OpenTUN(name string, mtu int) (Endpoint, error) {
	t, err := OpenTUNConfig(TUNConfig{Name: name, MTU: mtu})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// OpenTUNConfig is [OpenTUN] with options.
func OpenTUNConfig(cfg TUNConfig) (*TUN, error) {
	name, mtu := cfg.Name, cfg.MTU
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("link: TUN name %q too long", name)
	}
	if mtu <= 0 || mtu > 65535 {
		return nil, fmt.Errorf("link: TUN MTU %d out of range", mtu)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("link: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("link: TUN name %q: %w", name, err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if cfg.Offload {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("link: TUNSETIFF %q: %w", name, err)
	}
	if cfg.Offload {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("link: TUNSETVNETHDRSZ: %w", err)
		}
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("link: TUNSETOFFLOAD: %w", err)
		}
	}
	ifname := ifr.Name()
	if err := setMTU(ifname, mtu); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "/dev/net/tun:"+ifname)
	if f == nil {
		unix.Close(fd)
		return nil, errors.New("link: os.NewFile failed")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("link: TUN %s: %w", ifname, err)
	}
	t := &TUN{f: f, rc: rc, name: ifname, mtu: mtu, offload: cfg.Offload}
	if cfg.Offload {
		t.rbuf = make([]byte, tunOffloadBufLen)
	}
	return t, nil
}

func setMTU(name string, mtu int) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("link: socket for SIOCSIFMTU: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("link: set MTU %d on %s: %w", mtu, name, err)
	}
	return nil
}

// Name is the interface name the kernel gave the device.
func (t *TUN) Name() string { return t.name }

// MTU implements Endpoint.
func (t *TUN) MTU() int { return t.mtu }

// ReadPacket implements Endpoint. buf should hold MTU bytes: the kernel
// truncates a longer packet silently.
func (t *TUN) ReadPacket(buf []byte) (int, error) {
	if t.offload {
		t.rmu.Lock()
		defer t.rmu.Unlock()
		var size [1]int
		t.one[0] = buf
		_, err := t.readOffload(t.one[:], size[:])
		t.one[0] = nil
		return size[0], err
	}
	n, err := t.f.Read(buf)
	if err != nil {
		if t.closed.Load() || errors.Is(err, os.ErrClosed) {
			return 0, ErrClosed
		}
		return n, fmt.Errorf("link: read %s: %w", t.name, err)
	}
	return n, nil
}

// WritePacket implements Endpoint.
func (t *TUN) WritePacket(pkt []byte) error {
	if len(pkt) > t.mtu {
		return ErrPacketTooBig
	}
	var err error
	if t.offload {
		err = t.writeOffload(pkt)
	} else {
		_, err = t.f.Write(pkt)
	}
	if err != nil {
		if t.closed.Load() || errors.Is(err, os.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("link: write %s: %w", t.name, err)
	}
	return nil
}

// ReadPackets implements BatchReader: it waits for one packet, then takes
// every packet already queued, up to len(bufs), with one poller wake-up.
func (t *TUN) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	max := min(len(bufs), len(sizes))
	if max == 0 {
		return 0, nil
	}
	if t.offload {
		t.rmu.Lock()
		defer t.rmu.Unlock()
		return t.readOffload(bufs, sizes)
	}
	n := 0
	var opErr error
	err := t.rc.Read(func(fd uintptr) bool {
		for n < max {
			m, err := unix.Read(int(fd), bufs[n])
			switch err {
			case nil:
				sizes[n] = m
				n++
			case unix.EINTR:
			case unix.EAGAIN:
				return n > 0 // nothing yet: wait for readability
			default:
				opErr = err
				return true
			}
		}
		return true
	})
	if n > 0 {
		return n, nil // a later error shows up on the next call
	}
	if t.closed.Load() || err != nil && errors.Is(err, os.ErrClosed) {
		return 0, ErrClosed
	}
	if err == nil {
		err = opErr
	}
	return 0, fmt.Errorf("link: read %s: %w", t.name, err)
}

// WritePackets implements BatchWriter. With offload on, runs of
// consecutive segments of one TCP flow are merged into super-packets the
// kernel takes in one write.
func (t *TUN) WritePackets(pkts [][]byte) (int, error) {
	if t.offload {
		return t.writePacketsOffload(pkts)
	}
	for i, p := range pkts {
		if err := t.WritePacket(p); err != nil {
			return i, err
		}
	}
	return len(pkts), nil
}

// Close implements Endpoint. A device created by OpenTUN (not persistent)
// disappears when closed.
func (t *TUN) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	return t.f.Close()
}
