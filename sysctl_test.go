package ustack

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

func TestParseSysctl(t *testing.T) {
	cfg, err := ParseSysctl(strings.NewReader(`
# a comment
net.ipv4.tcp_syn_retries = 3
net/ipv4/tcp_rmem = 4096 87380 1048576
net.core.somaxconn=128
; another comment
net.ipv4.ip_local_port_range = 40000 40100
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TCP.SynRetries != 3 || cfg.TCP.RMem != [3]int{4096, 87380, 1048576} || cfg.TCP.Somaxconn != 128 ||
		cfg.TCP.IPLocalPortRange != [2]int{40000, 40100} {
		t.Errorf("parsed %+v", cfg.TCP)
	}
	if cfg.TCP.KeepaliveTime != 7200*time.Second {
		t.Errorf("untouched knob changed: keepalive %v", cfg.TCP.KeepaliveTime)
	}
	_, err = ParseSysctl(strings.NewReader("net.ipv4.tcp_syn_retries = 3\nnet.ipv4.tcp_nonsense = 1\n"))
	if !errors.Is(err, tcp.ErrUnknownSysctl) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("unknown name: %v", err)
	}
	// The parsed config drives a stack: ports come from the range.
	a, b := link.Pipe(1500)
	sa, _ := New(cfg)
	sb, _ := New(Config{})
	defer sa.Close()
	defer sb.Close()
	sa.AddInterface("p0", a, netip.MustParsePrefix("10.0.0.1/24"))
	sb.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24"))
	ln, _ := sb.Listen("tcp", ":70")
	defer ln.Close()
	for i := 0; i < 5; i++ {
		c, err := sa.Dial("tcp", "10.0.0.2:70")
		if err != nil {
			t.Fatal(err)
		}
		if p := c.LocalAddr().(*net.TCPAddr).Port; p < 40000 || p > 40100 {
			t.Errorf("local port %d outside ip_local_port_range", p)
		}
		c.Close()
	}
}
