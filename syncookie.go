package ustack

import "github.com/ustack/ustack/tcp"

// synCookiesSupported reports whether the tcp package provides SYN cookie
// functions the stack can use. Until it does, a full SYN queue drops SYNs
// (counted in ListenDrops).
const synCookiesSupported = false

func (t *tcpState) sendSynCookie(in *inputCtx, l *listener, tu tcp.Tuple, seg *tcp.Segment) {}

// synCookieACK checks whether seg completes a SYN-cookie handshake and
// creates the connection if so.
func (t *tcpState) synCookieACK(in *inputCtx, l *listener, tu tcp.Tuple, seg *tcp.Segment) bool {
	return false
}
