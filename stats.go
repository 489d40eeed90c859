package ustack

import (
	"reflect"
	"sync/atomic"
)

// IPStats are the IP (v4 and v6 together) MIB counters. Names follow the
// Linux /proc/net/snmp "Ip:" and "IpExt:" rows where one exists.
type IPStats struct {
	InReceives       uint64 // packets read from links
	InHdrErrors      uint64 // malformed header (version, length, header checksum for v4 is InCsumErrors)
	InAddrErrors     uint64 // invalid source or destination (unspecified, multicast, loopback from a link)
	InCsumErrors     uint64 // bad IPv4 header checksum
	NotForUs         uint64 // valid unicast destination that is not one of our addresses (no forwarding)
	InUnknownProtos  uint64 // upper-layer protocol we do not speak
	InTruncatedPkts  uint64 // total length larger than the bytes read
	FragmentsDropped uint64 // fragments: ustack does not reassemble (Linux ReasmFails)
	InDiscards       uint64 // dropped for lack of resources
	InDelivers       uint64 // handed to an upper-layer protocol
	OutRequests      uint64 // packets handed to links
	OutNoRoutes      uint64 // no route to the destination (NoRoute)
	OutDiscards      uint64 // link write failed
}

// ICMPStats are the ICMP (v4) or ICMPv6 MIB counters.
type ICMPStats struct {
	InMsgs          uint64
	InErrors        uint64 // malformed
	InCsumErrors    uint64
	InEchos         uint64
	InEchoReps      uint64
	InDestUnreachs  uint64
	InPktTooBigs    uint64 // v4: fragmentation needed; v6: packet too big
	InTimeExcds     uint64
	InOtherTypes    uint64 // types ustack ignores (including neighbor discovery on L3 links)
	OutMsgs         uint64
	OutEchoReps     uint64
	OutDestUnreachs uint64
	OutErrors       uint64
}

// TCPStats are the TCP MIB counters with Linux names ("Tcp:" and "TcpExt:").
type TCPStats struct {
	ActiveOpens  uint64
	PassiveOpens uint64
	AttemptFails uint64
	EstabResets  uint64
	CurrEstab    uint64 // gauge: connections in ESTABLISHED or CLOSE-WAIT
	InSegs       uint64
	OutSegs      uint64
	RetransSegs  uint64
	InErrs       uint64 // malformed or bad checksum
	InCsumErrors uint64
	OutRsts      uint64
	NoPort       uint64 // segments to a port with no connection or listener (answered with RST)

	// TcpExt
	ListenOverflows    uint64
	ListenDrops        uint64
	SyncookiesSent     uint64
	SyncookiesRecv     uint64
	SyncookiesFailed   uint64
	TCPSynRetrans      uint64
	TCPFastRetrans     uint64
	TCPTimeouts        uint64
	TCPFastOpenActive  uint64
	TCPFastOpenPassive uint64
	TCPTimeWaitReuse   uint64 // TIME-WAIT tuples reused (outgoing, or by a new SYN)
}

// Stats is a snapshot of all counters of a Stack.
type Stats struct {
	IP    IPStats
	ICMP  ICMPStats
	ICMP6 ICMPStats
	TCP   TCPStats
}

// counters is the live form of Stats: same layouts with atomic fields.
type ipCounters struct {
	InReceives, InHdrErrors, InAddrErrors, InCsumErrors, NotForUs, InUnknownProtos,
	InTruncatedPkts, FragmentsDropped, InDiscards, InDelivers, OutRequests, OutNoRoutes,
	OutDiscards atomic.Uint64
}

type icmpCounters struct {
	InMsgs, InErrors, InCsumErrors, InEchos, InEchoReps, InDestUnreachs, InPktTooBigs,
	InTimeExcds, InOtherTypes, OutMsgs, OutEchoReps, OutDestUnreachs, OutErrors atomic.Uint64
}

type tcpCounters struct {
	ActiveOpens, PassiveOpens, AttemptFails, EstabResets, CurrEstab, InSegs, OutSegs,
	RetransSegs, InErrs, InCsumErrors, OutRsts, NoPort,
	ListenOverflows, ListenDrops, SyncookiesSent, SyncookiesRecv, SyncookiesFailed,
	TCPSynRetrans, TCPFastRetrans, TCPTimeouts, TCPFastOpenActive, TCPFastOpenPassive,
	TCPTimeWaitReuse atomic.Uint64
}

type counters struct {
	ip    ipCounters
	icmp  icmpCounters
	icmp6 icmpCounters
	tcp   tcpCounters
}

// snapshot copies every atomic.Uint64 field of src into the uint64 field of
// the same name in dst.
func snapshot(dst any, src any) {
	dv := reflect.ValueOf(dst).Elem()
	sv := reflect.ValueOf(src).Elem()
	st := sv.Type()
	for i := 0; i < st.NumField(); i++ {
		f := dv.FieldByName(st.Field(i).Name)
		if !f.IsValid() {
			continue
		}
		c := sv.Field(i).Addr().Interface().(*atomic.Uint64)
		f.SetUint(c.Load())
	}
}

// Stats returns a snapshot of the stack's MIB counters.
func (s *Stack) Stats() Stats {
	var st Stats
	snapshot(&st.IP, &s.ctr.ip)
	snapshot(&st.ICMP, &s.ctr.icmp)
	snapshot(&st.ICMP6, &s.ctr.icmp6)
	snapshot(&st.TCP, &s.ctr.tcp)
	return st
}
