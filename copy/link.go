package tcpcopy

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// LinkType is a pcap LINKTYPE_ value.
type LinkType uint32

// Link types the decoder understands.
const (
	LinkNull     LinkType = 0   // BSD loopback, 4-byte address family in the capturing host's byte order
	LinkEthernet LinkType = 1   // Ethernet II, optional 802.1Q / 802.1ad tags
	LinkRawAlt12 LinkType = 12  // DLT_RAW as some systems number it
	LinkRawAlt14 LinkType = 14  // DLT_RAW on OpenBSD
	LinkRaw      LinkType = 101 // raw IPv4 or IPv6
	LinkLoop     LinkType = 108 // OpenBSD loopback, address family in network byte order
	LinkLinuxSLL LinkType = 113 // Linux cooked capture v1
	LinkIPv4     LinkType = 228
	LinkIPv6     LinkType = 229
	LinkSLL2     LinkType = 276 // Linux cooked capture v2
)

// String names the link type.
func (l LinkType) String() string {
	switch l {
	case LinkNull:
		return "NULL"
	case LinkEthernet:
		return "ETHERNET"
	case LinkRaw, LinkRawAlt12, LinkRawAlt14:
		return "RAW"
	case LinkLoop:
		return "LOOP"
	case LinkLinuxSLL:
		return "LINUX_SLL"
	case LinkIPv4:
		return "IPV4"
	case LinkIPv6:
		return "IPV6"
	case LinkSLL2:
		return "LINUX_SLL2"
	}
	return fmt.Sprintf("LINKTYPE_%d", uint32(l))
}

// Supported reports whether NetworkLayer can decode frames of this type.
func (l LinkType) Supported() bool {
	switch l {
	case LinkNull, LinkEthernet, LinkRaw, LinkRawAlt12, LinkRawAlt14, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkSLL2:
		return true
	}
	return false
}

// ErrShortFrame is returned for frames too short for their link header.
var ErrShortFrame = errors.New("frame shorter than its link-layer header")

const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
	etherTypeQinQ = 0x88a8
	etherType9100 = 0x9100
)

// NetworkLayer strips the link-layer header of a frame and returns the IPv4
// or IPv6 packet inside it, as a sub-slice of frame. It returns (nil, nil)
// for frames that carry something other than IP (ARP, ...).
func NetworkLayer(l LinkType, frame []byte) ([]byte, error) {
	switch l {
	case LinkRaw, LinkRawAlt12, LinkRawAlt14, LinkIPv4, LinkIPv6:
		if len(frame) == 0 {
			return nil, ErrShortFrame
		}
		switch frame[0] >> 4 {
		case 4, 6:
			return frame, nil
		}
		return nil, nil
	case LinkEthernet:
		if len(frame) < 14 {
			return nil, ErrShortFrame
		}
		off := 12
		et := binary.BigEndian.Uint16(frame[off:])
		for tags := 0; (et == etherTypeVLAN || et == etherTypeQinQ || et == etherType9100) && tags < 4; tags++ {
			off += 4
			if len(frame) < off+2 {
				return nil, ErrShortFrame
			}
			et = binary.BigEndian.Uint16(frame[off:])
		}
		return ipByEtherType(et, frame[off+2:])
	case LinkLinuxSLL:
		if len(frame) < 16 {
			return nil, ErrShortFrame
		}
		return ipByEtherType(binary.BigEndian.Uint16(frame[14:]), frame[16:])
	case LinkSLL2:
		if len(frame) < 20 {
			return nil, ErrShortFrame
		}
		return ipByEtherType(binary.BigEndian.Uint16(frame[0:]), frame[20:])
	case LinkNull, LinkLoop:
		if len(frame) < 4 {
			return nil, ErrShortFrame
		}
		var fam uint32
		if l == LinkLoop {
			fam = binary.BigEndian.Uint32(frame)
		} else {
			// Host byte order of the machine that captured: accept both.
			fam = binary.LittleEndian.Uint32(frame)
			if fam > 0xffff {
				fam = binary.BigEndian.Uint32(frame)
			}
		}
		switch fam {
		case 2: // AF_INET everywhere
			return frame[4:], nil
		case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			return frame[4:], nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("%w %d (%s)", ErrUnsupportedLinkType, uint32(l), l)
}

func ipByEtherType(et uint16, b []byte) ([]byte, error) {
	switch et {
	case etherTypeIPv4, etherTypeIPv6:
		return b, nil
	}
	return nil, nil
}
