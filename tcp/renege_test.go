package tcp

import (
	"bytes"
	"testing"
	"time"
)

// TestSACKReneging: the receiver SACKs out-of-order data, then throws it
// away (Linux does so under memory pressure, tcp_prune_ofo_queue) before
// the hole is filled. Once the retransmission of the hole is acked, the
// sender's oldest unacked segment is one marked SACKed that the receiver
// no longer has. Like Linux (tcp_timeout_mark_lost), the retransmission
// timeout must see that the peer reneged (the segment at SND.UNA is
// SACKed), forget the SACK marks and retransmit everything, instead of
// skipping the SACKed segments forever and timing out after tcp_retries2;
// and the ACK that reveals it arms that timer early (Linux
// tcp_check_sack_reneging).
func TestSACKReneging(t *testing.T) {
	v := newPair(t, cfgDefault(), cfgDefault(), 10*time.Millisecond)
	v.noTrace = true
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a, b := v.c[0], v.c[1]
	iss := a.Info().SndNxt
	firstSeen, reneged := false, false
	var renegedAt time.Time
	v.drop = func(from int, s *Segment) bool {
		if from != 0 || len(s.Payload) == 0 || s.Seq != iss {
			return false
		}
		if !firstSeen {
			firstSeen = true
			return true // the first segment is lost: the rest is SACKed
		}
		if !reneged && a.sackedOut > 0 && len(b.ooo) > 0 {
			// Its retransmission: the receiver reneges just before
			// it arrives.
			reneged = true
			renegedAt = v.now
			b.ooo, b.oooBytes, b.nSack = nil, 0, 0
		}
		return false
	}
	msg := bytes.Repeat([]byte("reneging "), 1800) // 16200 bytes, 12 segments
	var got []byte
	buf := make([]byte, 4096)
	v.hook = func() {
		for {
			n, _ := b.Recv(buf)
			if n == 0 {
				break
			}
			got = append(got, buf[:n]...)
		}
		v.flush(1)
	}
	if n, _ := a.Send(msg); n != len(msg) {
		t.Fatalf("sent %d of %d", n, len(msg))
	}
	v.flush(0)
	v.run(60*time.Second, func() bool { return len(got) == len(msg) })
	if !reneged {
		t.Fatal("the receiver never reneged: test setup broken")
	}
	if !bytes.Equal(got, msg) {
		in := a.Info()
		t.Fatalf("received %d of %d bytes after 60 s; sender: state %v ca %v unacked %d sacked %d lost %d retransmits %d rto %v",
			len(got), len(msg), in.State, in.CAState, in.Unacked, in.Sacked, in.Lost, in.Retransmits, in.RTO)
	}
	if v.ctr[0].TCPSACKReneging != 1 {
		t.Errorf("TCPSACKReneging %d, want 1", v.ctr[0].TCPSACKReneging)
	}
	// The ACK that moves SND.UNA onto a SACKed segment arms the timer
	// at max(SRTT/16, 10 ms), not a whole RTO (200 ms at least): the
	// repair, then slow start over 20 ms RTTs, ends well within one RTO.
	repair := v.now.Sub(renegedAt)
	if repair >= v.c[0].cfg.RTOMin {
		t.Errorf("all data %v after the reneging, want less than one RTO (%v)", repair, v.c[0].cfg.RTOMin)
	}
	t.Logf("all %d bytes %v after the reneging; TCPSACKReneging %d, RTO timeouts %d", len(got), repair, v.ctr[0].TCPSACKReneging, v.ctr[0].TCPTimeouts)
	checkInvariants(t, a, "after reneging")
}
