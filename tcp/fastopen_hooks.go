package tcp

// Fast Open hooks. The engine carries the TFO option in SYN and SYN-ACK and
// remembers the cookie the peer returns; cookie generation/validation
// (fastopen.go) and data in the SYN are the Fast Open issue's business.

type tfoState struct {
	set      bool     // put a TFO option in our SYN / SYN-ACK
	cookie   [16]byte // cookie we send (empty = cookie request)
	n        int
	exp      bool     // send the option in the experimental form (kind 254)
	peer     [16]byte // cookie received in the peer's SYN-ACK
	peerN    int
	peerSeen bool
	peerExp  bool // the peer's option (SYN or SYN-ACK) was kind 254

	// active side
	synData      bool // the first SYN carries the queued data
	synDataMax   int  // payload limit for it (0: the MSS we advertise - 40)
	synDataN     int  // data bytes the first SYN carried
	synDataAcked bool // the SYN-ACK acknowledged them

	// passive side
	synDataIn int // bytes of SYN data accepted (AcceptSynData)
}

// SetFastOpenCookie makes the SYN (active side) carry a TCP Fast Open
// option: a cookie request when cookie is empty, otherwise the cookie
// (at most 16 bytes; longer cookies are ignored). On the passive side it
// puts cookie into the SYN-ACK. Call it before the first Output.
//
// On the passive side the option takes the form (kind 34 or the
// experimental kind 254 / 0xF989) of the SYN's option.
func (c *Conn) SetFastOpenCookie(cookie []byte) {
	if len(cookie) > 16 {
		return
	}
	c.tfo.set = true
	c.tfo.n = copy(c.tfo.cookie[:], cookie)
	if c.passive {
		c.tfo.exp = c.tfo.peerExp
	}
}

// SetFastOpen prepares an active open for TCP Fast Open (RFC 7413, Linux
// tcp_fastopen bits 0x1 and 0x4). Call it after NewActive and before the
// first Output; the data queued with Send by then is what the SYN carries.
//
//   - cookie non-empty: the SYN carries the cookie (in the experimental
//     kind 254 form when exp is set) and the queued data, at most
//     min(mss, the MSS we advertise - 40) bytes (mss: the server's MSS
//     remembered with the cookie, 0 if unknown).
//   - cookie empty, noCookie false: the SYN carries a cookie request and
//     no data.
//   - noCookie (tcp_fastopen 0x4): no option, the SYN carries the data.
//
// If the SYN-ACK does not acknowledge the data, the data is sent again
// right after the handshake (TCPFastOpenActiveFail); a retransmitted SYN
// carries no data, like Linux. After the handshake PeerFastOpenCookie and
// PeerFastOpenExp give what the server returned, SynDataAcked whether the
// data got through (also tcp_info's SYN_DATA option bit).
func (c *Conn) SetFastOpen(cookie []byte, exp bool, mss int, noCookie bool) {
	if c.state != SynSent || c.synEmitted || len(cookie) > 16 {
		return
	}
	c.tfo.synDataMax = mss
	if noCookie {
		c.tfo.set = false
		c.tfo.synData = true
		return
	}
	c.tfo.set = true
	c.tfo.exp = exp
	c.tfo.n = copy(c.tfo.cookie[:], cookie)
	c.tfo.synData = len(cookie) > 0
}

// SynDataAcked reports whether the server acknowledged the data our SYN
// carried (Fast Open).
func (c *Conn) SynDataAcked() bool { return c.tfo.synDataAcked }

// PeerFastOpenCookie returns the cookie the peer sent in its SYN-ACK, or nil.
func (c *Conn) PeerFastOpenCookie() []byte {
	if !c.tfo.peerSeen {
		return nil
	}
	return append([]byte(nil), c.tfo.peer[:c.tfo.peerN]...)
}

// PeerFastOpenExp reports whether the peer's Fast Open option (in its SYN
// or SYN-ACK) used the experimental form, kind 254 with ExID 0xF989.
func (c *Conn) PeerFastOpenExp() bool { return c.tfo.peerExp }

// AcceptSynData makes data, the payload of the SYN this passive
// connection was created from, readable at once (Fast Open server: before
// the handshake completes), and the SYN-ACK then acknowledges it. Call it
// after NewPassive and before the first Output, typically when
// ServerFastOpen (or the stack's own cookie check) accepted the SYN. It
// returns the number of bytes taken (bounded by the receive buffer).
func (c *Conn) AcceptSynData(data []byte) int {
	if !c.passive || c.state != SynReceived || c.synEmitted || c.tfo.synDataIn > 0 {
		return 0
	}
	n := min(len(data), c.rcvFree(), int(c.synWindow()))
	if n <= 0 {
		return 0
	}
	c.rbuf = append(c.rbuf, data[:n]...)
	c.rcvNxt += uint32(n)
	c.rcvWup = c.rcvNxt
	c.bytesReceived += uint64(n)
	c.dataSegsIn++
	c.lastDataRecv = c.now
	c.tfo.synDataIn = n
	if !c.ccInit {
		// The reply may be sent before the handshake completes.
		c.cc.Init(c.sndMSS, c.now)
		c.ccInit = true
	}
	return n
}

// ServerFastOpen applies a listener's Fast Open policy to the SYN this
// passive connection was created from, like Linux tcp_try_fastopen, and
// reports whether the SYN's data was accepted. Call it right after
// NewPassive (before the first Output) when the listener has Fast Open
// enabled. mode is net.ipv4.tcp_fastopen (FastOpenServer must be set,
// FastOpenServerNoCookie accepts data without a cookie); keys are the
// server keys (the backup key is accepted too; such a client gets a
// fresh primary-key cookie).
//
//   - a cookie request (empty option) gets a cookie in the SYN-ACK
//     (TCPFastOpenCookieReqd); data in such a SYN is not accepted;
//   - a valid cookie with data: the data becomes readable now and the
//     SYN-ACK acknowledges it (TCPFastOpenPassive);
//   - an invalid cookie: only the SYN is acknowledged (the client
//     retransmits the data) and a fresh cookie is returned
//     (TCPFastOpenPassiveFail).
//
// The SYN-ACK's option has the form of the SYN's (kind 34 or 254). The
// listener's queue limit (TCPFastOpenListenOverflow) is the caller's.
func (c *Conn) ServerFastOpen(keys *FastOpenKeys, mode int, syn *Segment) bool {
	if !c.passive || c.state != SynReceived || c.synEmitted || syn == nil || mode&FastOpenServer == 0 {
		return false
	}
	o := &syn.Options
	src, dst := c.tuple.Remote.Addr(), c.tuple.Local.Addr()
	if o.HasFastOpen && o.CookieLen == 0 {
		c.count(func(k *Counters) { k.TCPFastOpenCookieReqd++ })
	}
	if mode&FastOpenServerNoCookie != 0 && len(syn.Payload) > 0 {
		if c.AcceptSynData(syn.Payload) > 0 {
			c.count(func(k *Counters) { k.TCPFastOpenPassive++ })
			return true
		}
		return false
	}
	if !o.HasFastOpen || keys == nil {
		return false
	}
	fresh := keys.Cookie(src, dst)
	if o.CookieLen == 0 {
		c.SetFastOpenCookie(fresh[:])
		return false
	}
	got := o.Cookie[:o.CookieLen]
	primaryOnly := FastOpenKeys{Primary: keys.Primary}
	switch {
	case primaryOnly.Valid(got, src, dst):
	case keys.Valid(got, src, dst):
		c.SetFastOpenCookie(fresh[:]) // made with the backup key: renew
	default:
		c.count(func(k *Counters) { k.TCPFastOpenPassiveFail++ })
		c.SetFastOpenCookie(fresh[:])
		return false
	}
	if len(syn.Payload) == 0 {
		return false
	}
	if c.AcceptSynData(syn.Payload) == 0 {
		return false
	}
	c.count(func(k *Counters) { k.TCPFastOpenPassive++ })
	return true
}

// SetTimestampOffset sets the per-connection offset added to our RFC 7323
// timestamp clock (e.g. TSOffset(key, local, remote), as Linux derives it).
// By default the engine derives one from the ISS and ports (and uses 0
// when net.ipv4.tcp_timestamps is 2). Call it before the first Output.
func (c *Conn) SetTimestampOffset(off uint32) { c.tsOffset = off }
