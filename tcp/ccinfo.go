package tcp

import "github.com/ustack/ustack/tcp/cc"

// CongestionControl returns the connection's congestion controller (nil
// before one is set up), for diagnostics such as BBR's state and model.
// Callers must not drive it.
func (c *Conn) CongestionControl() cc.Controller { return c.cc }
