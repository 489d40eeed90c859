package sim

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden traces in testdata/golden")

// goldenText is what a golden file holds for a scenario: the full timeline
// and the summary of a run with seed 1.
func goldenText(t *testing.T, sc *Scenario) []byte {
	t.Helper()
	r, err := sc.Run(Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("# scenario " + sc.Name + ", seed 1: " + sc.Description + "\n")
	if err := r.Sim.Trace().WriteText(&b, nil); err != nil {
		t.Fatal(err)
	}
	b.WriteString("# summary\n")
	r.Sim.WriteSummary(&b)
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			got := goldenText(t, sc)
			file := filepath.Join("testdata", "golden", sc.Name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./sim -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := 0; i < len(gl) || i < len(wl); i++ {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("%s differs from the golden trace at line %d:\n got: %s\nwant: %s\n(if the change is intended: go test ./sim -run TestGolden -update)", file, i+1, g, w)
					}
				}
			}
		})
	}
}
