package tcp

// The receive buffer is a ring: the bytes live in c.rbuf[:cap(c.rbuf)],
// len(c.rbuf) of them starting at index c.rbufOff and wrapping at the end.
// Data is copied once in (rbufWrite) and once out (rbufRead), never moved
// inside the buffer. While c.rbufOff is 0 the data is contiguous and a
// plain append to c.rbuf keeps the invariant.

// rbufWrite appends d to the receive buffer.
func (c *Conn) rbufWrite(d []byte) {
	n := len(c.rbuf)
	if n+len(d) > cap(c.rbuf) {
		nb := make([]byte, n, max(2*cap(c.rbuf), n+len(d), 512))
		c.rbufRead(nb)
		c.rbuf, c.rbufOff = nb, 0
	}
	size := cap(c.rbuf)
	full := c.rbuf[:size]
	w := c.rbufOff + n
	if w >= size {
		w -= size
	}
	k := copy(full[w:], d)
	copy(full, d[k:])
	c.rbuf = c.rbuf[:n+len(d)]
}

// rbufRead moves up to len(p) bytes from the receive buffer into p.
func (c *Conn) rbufRead(p []byte) int {
	avail := len(c.rbuf)
	size := cap(c.rbuf)
	full := c.rbuf[:size]
	n := copy(p, full[c.rbufOff:min(c.rbufOff+avail, size)])
	if n < len(p) && n < avail {
		n += copy(p[n:], full[:avail-n])
	}
	if n == avail {
		c.rbuf, c.rbufOff = c.rbuf[:0], 0
		return n
	}
	c.rbufOff += n
	if c.rbufOff >= size {
		c.rbufOff -= size
	}
	c.rbuf = c.rbuf[:avail-n]
	return n
}
