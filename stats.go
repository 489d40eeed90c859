package ustack

import (
	"github.com/ustack/ustack/tcp"
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
	OutEchos        uint64 // echo requests sent by Stack.Ping
	OutEchoReps     uint64
	OutDestUnreachs uint64
	OutErrors       uint64
	OutRateLimited  uint64 // errors not sent: icmp_msgs_per_sec (1000/s, burst 50)
	OutParmProbs    uint64 // ICMPv6 parameter problems (unknown next header)
}

// TCPStats are the TCP MIB counters with Linux names: the engine's
// tcp.Counters ("Tcp:" and "TcpExt:" rows, summed over connections; their
// fields are promoted, e.g. st.TCP.RetransSegs) plus what the stack itself
// counts. InSegs counts every segment the stack received; InErrs, OutSegs
// and OutRsts include the stack's own checks and RSTs.
type TCPStats struct {
	tcp.Counters

	InCsumErrors     uint64 // bad TCP checksum (also in InErrs)
	NoPort           uint64 // segments to no connection and no listener (answered with RST)
	ListenOverflows  uint64 // accept queue full
	ListenDrops      uint64 // SYNs or handshake ACKs dropped by a listener
	SyncookiesSent   uint64
	SyncookiesRecv   uint64
	SyncookiesFailed uint64
	TCPTimeWaitReuse uint64 // TIME-WAIT tuples reused (outgoing, or by a new SYN)
	TCPAbortOnMemory uint64 // connections reset for a resource limit (tcp_max_orphans)
	TCPMemoryDrops   uint64 // incoming data dropped above tcp_mem high (also in TCPRcvQDrop)
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
	InTimeExcds, InOtherTypes, OutMsgs, OutEchos, OutEchoReps, OutDestUnreachs, OutErrors,
	OutRateLimited, OutParmProbs atomic.Uint64
}

// tcpCounters are what the stack counts itself (engine counters live in
// the shards).
type tcpCounters struct {
	ActiveOpens, PassiveOpens,
	InSegs, InErrs, InCsumErrors, OutSegs, OutRsts, NoPort,
	ListenOverflows, ListenDrops, SyncookiesSent, SyncookiesRecv, SyncookiesFailed,
	TCPTimeWaitReuse, TCPAbortOnMemory, TCPMemoryDrops atomic.Uint64
	// Fast Open decisions of listeners (the engine counts the client's
	// TCPFastOpenActive and ActiveFail).
	FastOpenPassive, FastOpenPassiveFail, FastOpenCookieReqd, FastOpenListenOverflow atomic.Uint64
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
		sf, ok := dv.Type().FieldByName(st.Field(i).Name)
		if !ok || len(sf.Index) != 1 {
			continue // promoted fields are summed separately
		}
		f := dv.Field(sf.Index[0])
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
	// Engine counters, summed over the shards.
	sum := reflect.ValueOf(&st.TCP.Counters).Elem()
	for i := range s.tcp.shards {
		sh := &s.tcp.shards[i]
		sh.mu.Lock()
		c := sh.ctr
		sh.mu.Unlock()
		v := reflect.ValueOf(&c).Elem()
		for j := 0; j < v.NumField(); j++ {
			switch f := v.Field(j); f.Kind() {
			case reflect.Uint64:
				sum.Field(j).SetUint(sum.Field(j).Uint() + f.Uint())
			case reflect.Int64:
				sum.Field(j).SetInt(sum.Field(j).Int() + f.Int())
			}
		}
	}
	tc := &s.ctr.tcp
	st.TCP.InSegs = tc.InSegs.Load()
	// Opens are counted by the stack: the engine counts them in its
	// constructors, before SetCounters can attach the shard's counters.
	st.TCP.ActiveOpens = tc.ActiveOpens.Load()
	st.TCP.PassiveOpens = tc.PassiveOpens.Load()
	st.TCP.TCPFastOpenPassive += tc.FastOpenPassive.Load()
	st.TCP.TCPFastOpenPassiveFail += tc.FastOpenPassiveFail.Load()
	st.TCP.TCPFastOpenCookieReqd += tc.FastOpenCookieReqd.Load()
	st.TCP.TCPFastOpenListenOverflow += tc.FastOpenListenOverflow.Load()
	st.TCP.InErrs += tc.InErrs.Load()
	st.TCP.OutSegs += tc.OutSegs.Load()
	st.TCP.OutRsts += tc.OutRsts.Load()
	return st
}
