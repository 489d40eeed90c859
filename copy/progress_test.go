package tcpcopy

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

func TestIsTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	if isTerminal(null) || isTerminal(w) || isTerminal(&bytes.Buffer{}) {
		t.Errorf("/dev/null, a pipe or a buffer taken for a terminal")
	}
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to test with: %v", err)
	}
	defer pty.Close()
	if !isTerminal(pty) {
		t.Errorf("a pseudo-terminal not taken for a terminal")
	}
}

func TestProgressLine(t *testing.T) {
	path := synthCapture(t)
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for {
		if _, err := src.Next(); err == io.EOF {
			break
		}
	}
	var buf bytes.Buffer
	p := &progress{w: &buf, files: []*FileSource{src}, done: make(chan struct{})}
	p.result(&Result{SentBytes: 1500000, ReplayedBytes: 500000})
	p.result(&Result{})
	p.draw()
	line := buf.String()
	if !strings.HasPrefix(line, "\r\033[K[########################] 100% 2 connections replayed, 2.0 MB,") {
		t.Errorf("progress line %q", line)
	}
	// Main draws nothing when stderr is not a terminal.
	srv := startRecServer(t, "127.0.0.1:0", false)
	var out, errb bytes.Buffer
	if code := Main([]string{"-x", srv.addr(), "--fast", path}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
