package tcp

// Fast Open hooks. The engine carries the TFO option in SYN and SYN-ACK and
// remembers the cookie the peer returns; cookie generation/validation
// (fastopen.go) and data in the SYN are the Fast Open issue's business.

type tfoState struct {
	set      bool     // put a TFO option in our SYN / SYN-ACK
	cookie   [16]byte // cookie we send (empty = cookie request)
	n        int
	peer     [16]byte // cookie received in the peer's SYN-ACK
	peerN    int
	peerSeen bool
}

// SetFastOpenCookie makes the SYN (active side) carry a TCP Fast Open
// option: a cookie request when cookie is empty, otherwise the cookie
// (at most 16 bytes; longer cookies are ignored). On the passive side it
// puts cookie into the SYN-ACK. Call it before the first Output.
func (c *Conn) SetFastOpenCookie(cookie []byte) {
	if len(cookie) > 16 {
		return
	}
	c.tfo.set = true
	c.tfo.n = copy(c.tfo.cookie[:], cookie)
}

// PeerFastOpenCookie returns the cookie the peer sent in its SYN-ACK, or nil.
func (c *Conn) PeerFastOpenCookie() []byte {
	if !c.tfo.peerSeen {
		return nil
	}
	return append([]byte(nil), c.tfo.peer[:c.tfo.peerN]...)
}

// SetTimestampOffset sets the per-connection offset added to our RFC 7323
// timestamp clock (e.g. TSOffset(key, local, remote), as Linux derives it).
// By default the engine derives one from the ISS and ports (and uses 0
// when net.ipv4.tcp_timestamps is 2). Call it before the first Output.
func (c *Conn) SetTimestampOffset(off uint32) { c.tsOffset = off }
