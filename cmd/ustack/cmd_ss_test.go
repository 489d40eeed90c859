package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/control"
	"github.com/ustack/ustack/link"
)

// twoStacks joins two stacks over an in-memory pipe: 10.0.0.1 and 10.0.0.2.
func twoStacks(t *testing.T) (a, b *ustack.Stack) {
	t.Helper()
	pa, pb := link.Pipe(1500)
	var err error
	if a, err = ustack.New(ustack.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = ustack.New(ustack.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := a.AddInterface("eth0", pa, netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := b.AddInterface("eth0", pb, netip.MustParsePrefix("10.0.0.2/24")); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestSSAndStat(t *testing.T) {
	client, server := twoStacks(t)
	ln, err := server.Listen("tcp", "10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		buf := make([]byte, 5000)
		_, err = io.ReadFull(c, buf)
		accepted <- err
		// keep c open: the test inspects the established connection
	}()
	c, err := client.Dial("tcp", "10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(bytes.Repeat([]byte("x"), 5000)); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(t.TempDir(), "ctl.sock")
	srv, err := control.Listen(sock, server)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	defer func() {
		srv.Close()
		<-done
	}()

	var out, errb bytes.Buffer
	if code := run([]string{"ss", "--control", sock, "--all"}, &out, &errb); code != 0 {
		t.Fatalf("ss: exit %d: %s", code, errb.String())
	}
	t.Logf("ustack ss:\n%s", out.String())
	s := out.String()
	if strings.Contains(s, "\x1b[") {
		t.Errorf("colour escape codes in non-terminal output")
	}
	var estab string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "ESTAB") {
			estab = line
		}
	}
	if estab == "" || !strings.Contains(estab, "10.0.0.2:7") || !strings.Contains(estab, "10.0.0.1:") {
		t.Errorf("no ESTAB line for 10.0.0.2:7 <- 10.0.0.1 in:\n%s", s)
	}
	for _, want := range []string{"LISTEN", "cwnd:", "rtt:", "bytes_received:5000"} {
		if !strings.Contains(s, want) {
			t.Errorf("ss output lacks %q", want)
		}
	}

	out.Reset()
	if code := run([]string{"ss", "--control", sock, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("ss --json: exit %d: %s", code, errb.String())
	}
	var conns []control.Conn
	if err := json.Unmarshal(out.Bytes(), &conns); err != nil {
		t.Fatalf("ss --json: %v\n%s", err, out.String())
	}
	if len(conns) != 1 || conns[0].State != "ESTAB" || conns[0].BytesRecv != 5000 || conns[0].Cwnd <= 0 {
		t.Errorf("ss --json = %+v, want one ESTAB connection with 5000 bytes received", conns)
	}

	out.Reset()
	if code := run([]string{"stat", "--control", sock}, &out, &errb); code != 0 {
		t.Fatalf("stat: exit %d: %s", code, errb.String())
	}
	t.Logf("ustack stat:\n%s", out.String())
	for _, want := range []string{"TcpPassiveOpens", "TcpCurrEstab", "TcpInSegs", "IpInReceives"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stat output lacks %s", want)
		}
	}
	out.Reset()
	if code := run([]string{"stat", "--control", sock, "--json", "--zeros"}, &out, &errb); code != 0 {
		t.Fatalf("stat --json: exit %d: %s", code, errb.String())
	}
	var m map[string]uint64
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["TcpPassiveOpens"] != 1 || m["TcpCurrEstab"] != 1 || m["TcpActiveOpens"] != 0 {
		t.Errorf("stat --json: PassiveOpens %d CurrEstab %d ActiveOpens %d, want 1 1 0", m["TcpPassiveOpens"], m["TcpCurrEstab"], m["TcpActiveOpens"])
	}
	if _, ok := m["TcpExtTCPFastRetrans"]; !ok {
		t.Errorf("stat --json --zeros lacks TcpExtTCPFastRetrans")
	}

	// A missing socket is a clear failure, not a hang.
	errb.Reset()
	if code := run([]string{"ss", "--control", filepath.Join(t.TempDir(), "none")}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no such file") {
		t.Errorf("ss on a missing socket: exit %d, %q", code, errb.String())
	}
}

func TestSSColour(t *testing.T) {
	conns := []control.Conn{{Local: "10.0.0.2:80", State: "LISTEN"}, {Local: "10.0.0.2:80", Remote: "10.0.0.1:9", State: "ESTAB", Cwnd: 10}}
	var plain, colour bytes.Buffer
	writeSS(&plain, conns, false)
	writeSS(&colour, conns, true)
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("escape codes without a terminal")
	}
	if !strings.Contains(colour.String(), "\x1b[32mESTAB") || !strings.Contains(colour.String(), "\x1b[0m") {
		t.Errorf("no colour on a terminal: %q", colour.String())
	}
	if isTerminal(&plain) {
		t.Error("a bytes.Buffer is not a terminal")
	}
}
