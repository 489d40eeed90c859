package main

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlotLossyTransfer: the fast-retransmit scenario's JSON trace, drawn
// by ustack plot into valid SVG and PNG files.
func TestPlotLossyTransfer(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "fr.jsonl")
	var out, errb bytes.Buffer
	if code := run([]string{"sim", "fast-retransmit", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("sim: exit %d: %s", code, errb.String())
	}
	if err := os.WriteFile(trace, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	prefix := filepath.Join(dir, "out", "fr")
	if code := runPlot([]string{trace, "-o", prefix}, &out, &errb); code != 0 {
		t.Fatalf("plot: exit %d: %s", code, errb.String())
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "30000 data bytes") || !strings.Contains(out.String(), "1 retransmitted, 1 dropped") {
		t.Errorf("summary: %s", out.String())
	}
	for _, tc := range []struct {
		name string
		h    int
	}{{"tsg", 560}, {"cwnd", 1120}, {"rate", 560}} {
		svg, err := os.ReadFile(prefix + "-" + tc.name + ".svg")
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(bytes.NewReader(svg))
		elems := map[string]int{}
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s.svg: %v", tc.name, err)
			}
			if se, ok := tok.(xml.StartElement); ok {
				elems[se.Name.Local]++
			}
		}
		if elems["svg"] != 1 || elems["line"] == 0 || elems["text"] == 0 {
			t.Errorf("%s.svg elements: %v", tc.name, elems)
		}
		f, err := os.Open(prefix + "-" + tc.name + ".png")
		if err != nil {
			t.Fatal(err)
		}
		img, format, err := image.Decode(f)
		f.Close()
		if err != nil || format != "png" {
			t.Fatalf("%s.png: %v %q", tc.name, err, format)
		}
		if b := img.Bounds(); b.Dx() != 1000 || b.Dy() != tc.h {
			t.Errorf("%s.png is %dx%d, want 1000x%d", tc.name, b.Dx(), b.Dy(), tc.h)
		}
	}
	// bad input: a clear error
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{}\n[1,\n"), 0o644)
	errb.Reset()
	if code := runPlot([]string{bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "line 2") {
		t.Errorf("bad trace: exit %d %q", code, errb.String())
	}
}

// TestPlotBBR: ustack demo with BBR on a lossy bottleneck, then ustack
// plot: the rate chart is written and the summary reports the rate model.
func TestPlotBBR(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"demo", "--loss", "0.01", "--delay", "10ms", "--rate", "100000000", "--queue", "250",
		"--size", "2000000", "--sysctl", "net.ipv4.tcp_congestion_control=bbr", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errb.String())
	}
	trace := filepath.Join(dir, "bbr.jsonl")
	if err := os.WriteFile(trace, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	prefix := filepath.Join(dir, "bbr")
	if code := runPlot([]string{trace, "-o", prefix}, &out, &errb); code != 0 {
		t.Fatalf("plot: exit %d: %s", code, errb.String())
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "wrote "+prefix+"-rate.png") || !strings.Contains(out.String(), "rate model: ") || strings.Contains(out.String(), "note:") {
		t.Errorf("summary: %s", out.String())
	}
	svg, err := os.ReadFile(prefix + "-rate.svg")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{">STARTUP<", ">pacing rate<", ">bandwidth estimate (max_bw)<"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("rate.svg lacks %s", want)
		}
	}
	f, err := os.Open(prefix + "-rate.png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1000 || b.Dy() != 560 {
		t.Errorf("rate.png is %dx%d, want 1000x560", b.Dx(), b.Dy())
	}
}
