package tcp

import (
	"sync"
	"time"

	"github.com/ustack/ustack/tcp/cc"
)

// Per-event scratch state lives outside Conn, taken from a pool for the
// duration of one call, so that an idle connection holds none of it.
// Every user overwrites the state it reads, so reuse is invisible.

// ackScratch is the rate-sample state of one processAck call.
type ackScratch struct {
	rs            cc.RateSample
	rsPriorTime   time.Time
	rsSendElapsed time.Duration
	rsAckElapsed  time.Duration
	rsValid       bool
	rsAppLimited  bool
	rsTxInFlight  int
	rsLostSnap    int64
}

var (
	ackScratchPool = sync.Pool{New: func() any { return new(ackScratch) }}
	outSegPool     = sync.Pool{New: func() any { return new(Segment) }}
)

func getAckScratch() *ackScratch {
	s := ackScratchPool.Get().(*ackScratch)
	*s = ackScratch{}
	return s
}

func putAckScratch(s *ackScratch) { ackScratchPool.Put(s) }

func getOutSeg() *Segment { return outSegPool.Get().(*Segment) }

func putOutSeg(s *Segment) {
	s.Payload = nil // do not keep the send buffer reachable
	outSegPool.Put(s)
}

func (c *Conn) releaseAckScratch() {
	putAckScratch(c.ackScratch)
	c.ackScratch = nil
}

func (c *Conn) releaseOut() {
	putOutSeg(c.out)
	c.out = nil
}
