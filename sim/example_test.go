package sim_test

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/ustack/ustack/sim"
)

// A custom simulation: two hosts, a lossy link, an echo server, a client
// that sends a line and closes, and the first SYN-ACK dropped by a rule.
func Example() {
	s := sim.New(42)
	a := s.AddHost("client", netip.MustParseAddr("192.0.2.1"))
	b := s.AddHost("server", netip.MustParseAddr("192.0.2.2"))
	s.Connect(a, b, sim.Impairment{Delay: 15 * time.Millisecond, Loss: 0.01}, sim.Impairment{Delay: 15 * time.Millisecond})
	s.AddDropRule(sim.DropNth("server", 1)) // the first SYN-ACK
	a.Config.Set("net.ipv4.tcp_syn_retries", "3")

	b.Listen(7, sim.Echo())
	s.At(time.Second, func() {
		a.Dial(netip.MustParseAddrPort("192.0.2.2:7"), sim.Handler{
			OnOpen: func(c *sim.Conn) { c.Write([]byte("ping\n")) },
			OnData: func(c *sim.Conn, p []byte) { c.Close() },
		})
	})
	if err := s.Run(5 * time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	s.Trace().WriteText(os.Stdout, sim.Highlights)
	s.WriteSummary(os.Stdout)
}
