//go:build !linux

package link

import "errors"

// OpenTUN is only supported on Linux.
func OpenTUN(name string, mtu int) (Endpoint, error) {
	return nil, errors.New("link: TUN devices are only supported on Linux")
}
