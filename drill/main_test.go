package drill

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain_(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join("testdata", "drill", "passive-handshake.pkt")
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pkt")
	if err := os.WriteFile(bad, bytes.Replace(b, []byte("> S. 0:0(0) ack 1 "), []byte("> S. 0:0(0) ack 2 "), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{good}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.HasPrefix(out.String(), "PASS "+good) {
		t.Errorf("output %q", out.String())
	}
	out.Reset()
	if code := Main([]string{"--tolerance_usecs=1000", "-v", good, bad}, &out, &errb); code != 1 {
		t.Fatalf("exit %d", code)
	}
	s := out.String()
	for _, want := range []string{"PASS " + good, "FAIL " + bad + ": line 10: outbound packet mismatch (ack):", "expected 0.000000 S. 0:0(0) ack 2", "actual   0.000000 S. 0:0(0) ack 1", " > S. 0:0(0) ack 1 win 65535"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if code := Main(nil, &out, &errb); code != 2 {
		t.Errorf("no files: exit %d", code)
	}
}
