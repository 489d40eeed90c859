package tcp

import (
	"time"

	"github.com/ustack/ustack/wire"
)

// receiveData queues the payload of an acceptable segment: in order into
// the receive buffer, otherwise into the out-of-order queue. It decides
// whether to ACK now or delay.
func (c *Conn) receiveData(seg *Segment, now time.Time) {
	seq := seg.Seq
	data := seg.Payload
	end := seq + uint32(len(data))
	if seqLEQ(end, c.rcvNxt) {
		// Entirely old: our ACK was lost. D-SACK it and ACK at once.
		c.setDSACK(seq, end, true)
		c.count(func(k *Counters) { k.DelayedACKLost++ })
		c.ackNow = true
		return
	}
	if seqLT(seq, c.rcvNxt) {
		c.setDSACK(seq, c.rcvNxt, true)
		data = data[c.rcvNxt-seq:]
		seq = c.rcvNxt
	}
	// Trim to the window we advertised.
	if wndEnd := c.rcvNxt + c.curRcvWnd(); seqGT(seq+uint32(len(data)), wndEnd) {
		if !seqLT(seq, wndEnd) {
			c.count(func(k *Counters) {
				if c.curRcvWnd() == 0 {
					k.TCPZeroWindowDrop++
				} else {
					k.TCPRcvQDrop++
				}
			})
			c.ackNow = true
			return
		}
		data = data[:wndEnd-seq]
	}
	if len(data) == 0 {
		return
	}
	// Receiver MSS estimate (Linux tcp_measure_rcv_mss).
	if len(data) >= c.rcvMSS {
		c.rcvMSS = min(len(data), c.advMSS)
	}
	// Quick-ACK mode after an idle period (Linux: gap longer than the RTO).
	if !c.lastDataRecv.IsZero() && now.Sub(c.lastDataRecv) > c.rtt.RTO() {
		c.quick = 16
	}
	c.lastDataRecv = now
	if c.tsOK && seg.Options.HasTS && seg.Options.TSEcr != 0 {
		// Receiver RTT (Linux tcp_rcv_rtt_measure_ts), for buffer tuning.
		if d := int32(c.tsVal(now) - seg.Options.TSEcr); d >= 0 {
			r := max(time.Duration(d)*time.Millisecond, time.Millisecond)
			if c.rcvRTT == 0 || r < c.rcvRTT {
				c.rcvRTT = r
			} else {
				c.rcvRTT += (r - c.rcvRTT) / 8
			}
		}
	}

	if seq != c.rcvNxt {
		c.queueOOO(seq, data)
		c.ackNow = true
		return
	}
	hadOOO := len(c.ooo) > 0
	c.rbufWrite(data)
	c.rcvNxt += uint32(len(data))
	c.bytesReceived += uint64(len(data))
	c.count(func(k *Counters) { k.TCPRcvCoalesce++ })
	if hadOOO {
		c.drainOOO()
		c.ackNow = true // filled a hole: ACK at once
	}
	if c.oooFin && c.oooFinSeq == c.rcvNxt {
		c.processFIN(now)
	}
	switch {
	case c.quick > 0 && !c.pingpong:
		// Quick-ACK mode, not while interactive (Linux
		// tcp_in_quickack_mode).
		c.ackNow = true
	case c.rcvNxt-c.rcvWup > uint32(c.rcvMSS):
		// More than one full-sized segment unacknowledged.
		c.ackNow = true
	case c.delackAt.IsZero():
		ato := c.cfg.DelAckMin
		if ato > c.cfg.DelAckMax {
			ato = c.cfg.DelAckMax
		}
		c.delackAt = now.Add(ato)
	}
}

// oooBlockOverhead is what each out-of-order block is charged against the
// receive buffer besides its payload, like Linux charges skb truesize: a
// flood of tiny out-of-order segments is capped at a few hundred blocks.
const oooBlockOverhead = 256

// OOOMemory is the memory the out-of-order queue holds, as charged against
// the receive buffer and net.ipv4.tcp_mem: its payload bytes plus
// oooBlockOverhead per block.
func (c *Conn) OOOMemory() int { return c.oooBytes + len(c.ooo)*oooBlockOverhead }

// FillsHole reports whether n bytes of data at seq would fill the hole
// before the out-of-order queue: they start at or before RCV.NXT and go
// past it while out-of-order data waits. Such data lets what is queued
// reach the application, so a memory limit should not drop it.
func (c *Conn) FillsHole(seq uint32, n int) bool {
	return len(c.ooo) > 0 && seqLEQ(seq, c.rcvNxt) && seqGT(seq+uint32(n), c.rcvNxt)
}

// queueOOO stores out-of-order data, merging with neighbours, within the
// memory cap (the receive buffer). It updates the SACK blocks.
func (c *Conn) queueOOO(seq uint32, data []byte) {
	end := seq + uint32(len(data))
	// Find overlaps.
	i := 0
	for i < len(c.ooo) && seqLT(c.ooo[i].end(), seq) {
		i++
	}
	j := i
	for j < len(c.ooo) && seqLEQ(c.ooo[j].seq, end) {
		j++
	}
	// c.ooo[i:j] touch or overlap [seq,end).
	if j == i+1 && seqLEQ(c.ooo[i].seq, seq) && seqGEQ(c.ooo[i].end(), end) {
		// Fully duplicate.
		c.setDSACK(seq, end, false)
		c.updateSACK(c.ooo[i].seq, c.ooo[i].end())
		return
	}
	ns, ne := seq, end
	if i < j {
		ns = seqMin(ns, c.ooo[i].seq)
		ne = seqMax(ne, c.ooo[j-1].end())
	}
	old := 0
	for k := i; k < j; k++ {
		old += len(c.ooo[k].data)
	}
	newBytes := int(ne-ns) - old
	blocks := len(c.ooo) - (j - i) + 1
	if c.oooBytes+newBytes+blocks*oooBlockOverhead > c.rcvBufCap || int(ne-ns) > c.rcvBufCap {
		c.count(func(k *Counters) { k.TCPOFODrop++ })
		return
	}
	c.count(func(k *Counters) {
		k.TCPOFOQueue++
		if i < j {
			k.TCPOFOMerge++
		}
	})
	var buf []byte
	start := i
	if i < j && c.ooo[i].seq == ns && cap(c.ooo[i].data) >= int(ne-ns) {
		buf = c.ooo[i].data[:ne-ns]
		start = i + 1
	} else {
		size := int(ne - ns)
		buf = make([]byte, size, min(size+size/2, max(size, c.rcvBufCap)))
	}
	for k := start; k < j; k++ {
		copy(buf[c.ooo[k].seq-ns:], c.ooo[k].data)
	}
	copy(buf[seq-ns:], data)
	blk := oooSeg{seq: ns, data: buf}
	if i == j {
		c.ooo = append(c.ooo, oooSeg{})
		copy(c.ooo[i+1:], c.ooo[i:])
		c.ooo[i] = blk
	} else {
		c.ooo[i] = blk
		c.ooo = append(c.ooo[:i+1], c.ooo[j:]...)
	}
	c.oooBytes += newBytes
	c.updateSACK(ns, ne)
}

// drainOOO moves out-of-order data that became in order into the receive
// buffer.
func (c *Conn) drainOOO() {
	n := 0
	for n < len(c.ooo) && seqLEQ(c.ooo[n].seq, c.rcvNxt) {
		b := &c.ooo[n]
		if seqGT(b.end(), c.rcvNxt) {
			d := b.data[c.rcvNxt-b.seq:]
			c.rbufWrite(d)
			c.rcvNxt += uint32(len(d))
			c.bytesReceived += uint64(len(d))
		}
		c.oooBytes -= len(b.data)
		n++
	}
	if n > 0 {
		m := copy(c.ooo, c.ooo[n:])
		for k := m; k < len(c.ooo); k++ {
			c.ooo[k] = oooSeg{}
		}
		c.ooo = c.ooo[:m]
	}
	// Drop SACK blocks now below RCV.NXT.
	k := 0
	for i := 0; i < c.nSack; i++ {
		if seqGT(c.sackBlk[i].Right, c.rcvNxt) {
			c.sackBlk[k] = c.sackBlk[i]
			k++
		}
	}
	c.nSack = k
}

// updateSACK makes [l,r) the first SACK block (RFC 2018 4: the block with
// the most recently received segment first), dropping blocks it covers.
func (c *Conn) updateSACK(l, r uint32) {
	if !c.sackOK {
		return
	}
	var blk [4]wire.SACKBlock
	blk[0] = wire.SACKBlock{Left: l, Right: r}
	n := 1
	for i := 0; i < c.nSack && n < 4; i++ {
		b := c.sackBlk[i]
		if seqLEQ(b.Right, c.rcvNxt) {
			continue
		}
		if seqLEQ(b.Left, r) && seqGEQ(b.Right, l) { // overlaps/touches new block
			continue
		}
		blk[n] = b
		n++
	}
	c.sackBlk = blk
	c.nSack = n
}

// setDSACK records a D-SACK block (RFC 2883) for the next ACK.
func (c *Conn) setDSACK(l, r uint32, old bool) {
	if !c.sackOK || !c.cfg.DSACK {
		return
	}
	c.dsack = wire.SACKBlock{Left: l, Right: r}
	c.dsackPending = true
	c.count(func(k *Counters) {
		if old {
			k.TCPDSACKOldSent++
		} else {
			k.TCPDSACKOfoSent++
		}
	})
}
