package ustack

import (
	"net"
	"testing"

	"golang.org/x/net/nettest"
)

// TestNetConn runs the x/net conformance suite for net.Conn on a pair of
// ustack connections.
func TestNetConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		p := newPair(t, 1500)
		ln, err := p.B.Listen("tcp", ":5000")
		if err != nil {
			return nil, nil, nil, err
		}
		defer ln.Close()
		done := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- nil
				return
			}
			done <- c
		}()
		c1, err = p.A.Dial("tcp", "10.0.0.2:5000")
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-done
		stop = func() {
			c1.Close()
			c2.Close()
			p.A.Close()
			p.B.Close()
		}
		return c1, c2, stop, nil
	})
}
