//go:build !linux

package tcpcopy

import (
	"errors"
	"time"
)

// LiveSource is only available on Linux.
type LiveSource struct{ Source }

// OpenLive is only available on Linux.
func OpenLive(ifname string, ports []uint16, duration time.Duration) (*LiveSource, error) {
	return nil, errors.New("live capture needs Linux (AF_PACKET)")
}

// Stop does nothing.
func (s *LiveSource) Stop() {}

// UserspaceDropped returns 0.
func (s *LiveSource) UserspaceDropped() int64 { return 0 }
