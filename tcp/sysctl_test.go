package tcp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseSysctl(t *testing.T) {
	const conf = `# tuning
; another comment

net.ipv4.tcp_syn_retries = 2
net/ipv4/tcp_rmem=8192 65536 1048576
  net.core.somaxconn	=  1024  
-net.ipv4.tcp_does_not_exist = 5
-net.ipv4.tcp_ecn = 9
net.ipv4.tcp_syn_retries = 4
`
	c := DefaultConfig()
	if err := ParseSysctl(strings.NewReader(conf), &c); err != nil {
		t.Fatal(err)
	}
	if c.SynRetries != 4 || c.RMem != [3]int{8192, 65536, 1048576} || c.Somaxconn != 1024 || c.ECN != 2 {
		t.Fatalf("not applied: syn=%d rmem=%v somaxconn=%d ecn=%d", c.SynRetries, c.RMem, c.Somaxconn, c.ECN)
	}
}

func TestParseSysctlErrors(t *testing.T) {
	const conf = "net.ipv4.tcp_syn_retries = 3\nnet.ipv4.tcp_bogus = 1\n\nnet.ipv4.tcp_sack = 7\njust some words\n = 4\n"
	c := DefaultConfig()
	err := ParseSysctl(strings.NewReader(conf), &c)
	if err == nil {
		t.Fatal("bad file accepted")
	}
	if c != DefaultConfig() {
		t.Error("failed ParseSysctl changed the config")
	}
	msg := err.Error()
	for _, s := range []string{"line 2: sysctl net.ipv4.tcp_bogus", "line 4: sysctl net.ipv4.tcp_sack", "line 5: missing '='", "line 6: missing sysctl name"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q lacks %q", msg, s)
		}
	}
	if strings.Contains(msg, "line 1") {
		t.Errorf("good line reported: %q", msg)
	}
	var le *SysctlLineError
	if !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, ErrUnknownSysctl) || !errors.Is(err, ErrInvalidSysctlValue) {
		t.Errorf("error chain wrong: %#v", err)
	}
}

func FuzzParseSysctl(f *testing.F) {
	f.Add("net.ipv4.tcp_syn_retries = 3\n")
	f.Add("-net.ipv4.tcp_fastopen_key = 1-2-3-4,5-6-7-8\n# c\n")
	f.Add("net.ipv4.tcp_rmem = 1 2 3\nnet.ipv4.ip_local_port_range = 1 2")
	f.Fuzz(func(t *testing.T, s string) {
		c := DefaultConfig()
		if err := ParseSysctl(strings.NewReader(s), &c); err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("ParseSysctl accepted %q but Validate fails: %v", s, err)
			}
		} else if c != DefaultConfig() {
			t.Fatal("failed parse changed config")
		}
	})
}

func TestWriteSysctlRoundTrip(t *testing.T) {
	c := DefaultConfig()
	c.SynRetries = 2
	c.RMem = [3]int{1, 2, 3}
	c.FastOpenKey.Primary[0] = 0xab
	c.FastOpenKey.HasBackup = true
	var buf bytes.Buffer
	if err := WriteSysctl(&buf, &c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "net.ipv4.tcp_syn_retries = 2\n") ||
		!strings.Contains(buf.String(), "net.ipv4.tcp_rmem = 1\t2\t3\n") {
		t.Fatalf("output:\n%s", buf.String())
	}
	if n := strings.Count(buf.String(), "\n"); n != len(SysctlNames()) {
		t.Fatalf("%d lines for %d names", n, len(SysctlNames()))
	}
	got := DefaultConfig()
	if err := ParseSysctl(&buf, &got); err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Fatalf("round trip differs:\n%+v\n%+v", got, c)
	}
}

func FuzzConfigSet(f *testing.F) {
	for _, n := range SysctlNames() {
		v, _ := (&Config{}).Get(n)
		f.Add(n, v)
	}
	f.Add("net.ipv4.tcp_fastopen_key", "1-2-3-4,ffffffff-0-0-0")
	f.Add("net/ipv4/ip_local_port_range", "1 65535")
	f.Fuzz(func(t *testing.T, name, value string) {
		c := DefaultConfig()
		if err := c.Set(name, value); err != nil {
			if c != DefaultConfig() {
				t.Fatal("failed Set changed the config")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Set(%q, %q) accepted but Validate: %v", name, value, err)
		}
		v, err := c.Get(name)
		if err != nil {
			t.Fatalf("Get after Set: %v", err)
		}
		d := c
		if err := d.Set(name, v); err != nil || d != c {
			t.Fatalf("Get/Set not stable for %q: %q: %v", name, v, err)
		}
	})
}
