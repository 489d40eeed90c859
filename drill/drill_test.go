package drill

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestScripts runs every behaviour script; all must pass.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/drill/*.pkt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".pkt"), func(t *testing.T) {
			var log bytes.Buffer
			if err := RunFile(f, Options{Log: &log}); err != nil {
				t.Errorf("%v\ntrace:\n%s", err, log.String())
			}
		})
	}
}
