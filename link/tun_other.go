//go:build !linux

package link

import "errors"

var errNoTUN = errors.New("link: TUN devices are only supported on Linux")

// OpenTUN is only supported on Linux.
func OpenTUN(name string, mtu int) (Endpoint, error) { return nil, errNoTUN }

// TUNConfig configures OpenTUNConfig (Linux only).
type TUNConfig struct {
	Name    string
	MTU     int
	Offload bool
}

// TUN is a Linux TUN device; on this OS it cannot be opened.
type TUN struct{}

// OpenTUNConfig is only supported on Linux.
func OpenTUNConfig(cfg TUNConfig) (*TUN, error) { return nil, errNoTUN }

func (*TUN) Name() string                       { return "" }
func (*TUN) MTU() int                           { return 0 }
func (*TUN) ReadPacket(buf []byte) (int, error) { return 0, errNoTUN }
func (*TUN) WritePacket(pkt []byte) error       { return errNoTUN }
func (*TUN) Close() error                       { return nil }
