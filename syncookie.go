package ustack

import (
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// synCookiesSupported: the tcp package provides SynCookieISN,
// CheckSynCookie and the timestamp option encoding.
const synCookiesSupported = true

// sendSynCookie answers a SYN without keeping state: the SYN-ACK's ISN is a
// SYN cookie (tcp.SynCookieISN) and, when the client uses timestamps, the
// low bits of TSval carry its window scale and SACK permission
// (tcp.SynCookieTSVal). The SYN-ACK itself is produced by a throwaway engine
// connection so that its options match what a normal handshake would send;
// without timestamps, window scaling and SACK are left out as Linux does.
func (t *tcpState) sendSynCookie(in *inputCtx, l *listener, tu tcp.Tuple, seg *tcp.Segment) {
	ifc, _, ok := t.s.route(tu.Remote.Addr(), tu.Local.Addr())
	if !ok {
		t.s.ctr.ip.OutNoRoutes.Add(1)
		return
	}
	now := time.Now()
	mss := seg.Options.MSS
	if !seg.Options.HasMSS || mss == 0 {
		mss = 536
		if tu.Remote.Addr().Is6() {
			mss = 1220
		}
	}
	iss, _ := tcp.SynCookieISN(&t.cookieKeys, tu, seg.Seq, mss, now)
	syn := *seg
	syn.Payload = nil // data in a cookie SYN is not kept; the client resends it
	if !syn.Options.HasTS {
		syn.Options.HasWScale = false
		syn.Options.SACKPermitted = false
	}
	tc, err := tcp.NewPassive(t.cfg, tu, iss, &syn, now)
	if err != nil {
		return
	}
	tc.SetMTU(ifc.mtu)
	t.setTSOffset(tc, tu)
	o := tcp.SynCookieOptions{
		WScale: syn.Options.WScale, WScaleOK: syn.Options.HasWScale,
		SACKOK: syn.Options.SACKPermitted,
	}
	tc.Output(now, func(s *tcp.Segment) {
		if s.Flags&wire.TCPFlagSYN == 0 {
			return
		}
		if s.Options.HasTS {
			s.Options.TSVal = tcp.SynCookieTSVal(s.Options.TSVal, o)
		}
		h := wire.TCPHeader{
			SrcPort: tu.Local.Port(), DstPort: tu.Remote.Port(),
			Seq: s.Seq, Ack: s.Ack, Flags: s.Flags, Window: s.Window, Options: &s.Options,
		}
		t.sendBare(in, tu, &h)
	})
	l.lastCookie.Store(now.UnixNano())
	t.s.ctr.tcp.SyncookiesSent.Add(1)
}

// synCookieACK checks whether seg (an ACK for no connection) completes a
// SYN-cookie handshake and, if so, creates the connection from the state
// encoded in the cookie. It returns false if seg is not a valid cookie ACK
// (the caller answers with a RST).
func (t *tcpState) synCookieACK(in *inputCtx, l *listener, tu tcp.Tuple, seg *tcp.Segment) bool {
	now := time.Now()
	last := l.lastCookie.Load()
	if t.cfg.Syncookies == 0 || last == 0 || now.Sub(time.Unix(0, last)) > tcp.SynCookieMaxAge*tcp.SynCookiePeriod {
		return false // no cookies sent recently: do not even try
	}
	c := &t.s.ctr.tcp
	mss, ok := tcp.CheckSynCookie(&t.cookieKeys, tu, seg.Ack, seg.Seq-1, now)
	if !ok {
		c.SyncookiesFailed.Add(1)
		return false
	}
	var o tcp.SynCookieOptions
	if seg.Options.HasTS {
		if o, ok = tcp.DecodeSynCookieTS(seg.Options.TSEcr, t.cfg); !ok {
			c.SyncookiesFailed.Add(1)
			return false
		}
	}
	if l.acceptFull() {
		c.ListenOverflows.Add(1)
		c.ListenDrops.Add(1)
		return true
	}
	ifc, _, ok := t.s.route(tu.Remote.Addr(), tu.Local.Addr())
	if !ok {
		t.s.ctr.ip.OutNoRoutes.Add(1)
		return true
	}
	syn := tcp.Segment{Seq: seg.Seq - 1, Flags: wire.TCPFlagSYN, Window: seg.Window}
	syn.Options = wire.TCPOptions{
		MSS: mss, HasMSS: true,
		WScale: o.WScale, HasWScale: o.WScaleOK,
		SACKPermitted: o.SACKOK,
		HasTS:         seg.Options.HasTS, TSVal: seg.Options.TSVal,
	}
	tc, err := tcp.NewPassive(t.cfg, tu, seg.Ack-1, &syn, now)
	if err != nil {
		return false
	}
	e := t.newEndpoint(tu, tc, ifc)
	t.mu.Lock()
	if t.atConnLimitLocked() {
		// Config.MaxConns: drop, the peer retransmits.
		t.mu.Unlock()
		c.ListenDrops.Add(1)
		return true
	}
	if t.closed || t.conns[tu] != nil {
		t.mu.Unlock()
		return true
	}
	t.conns[tu] = e
	t.mu.Unlock()
	c.SyncookiesRecv.Add(1)
	c.PassiveOpens.Add(1)
	e.sh.mu.Lock()
	e.ln = l
	tc.Input(seg, now)
	if !e.dirty {
		e.dirty = true
		in.dirty = append(in.dirty, e)
	}
	e.sh.mu.Unlock()
	return true
}
