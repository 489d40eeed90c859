package drill

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary text to the parser: it must never panic, and
// whatever it accepts must run (briefly) without panicking.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/drill/*.pkt")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err == nil {
			f.Add(string(b))
		}
	}
	f.Add("0 < S. 0:0(0) ack 1 <FO 0123456789abcdef,FOEXP,eol>\n+.1~+.2 > R 1:1(0)\n")
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse(src)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, ev := range s.Events {
			if ev.Packet != nil {
				_ = packetText(ev.Packet)
			}
			if ev.Syscall != nil {
				for _, a := range ev.Syscall.Args {
					_ = a.String()
				}
			}
			if ev.Kind == EvPython {
				if as, err := parsePython(ev.Text, ev.Line); err == nil {
					for _, a := range as {
						_, _ = evalPython(a.expr, func(string) (int64, bool) { return 1, true })
					}
				}
			}
		}
		// Run only short scripts: virtual time is cheap but a script may
		// ask for days of it.
		if len(s.Events) <= 30 {
			for _, ev := range s.Events {
				if ev.Time.T > 300*time.Second || ev.Time.End > 300*time.Second || ev.Time.Kind == TimeAny {
					return
				}
			}
			_ = Run(s, Options{Dir: t.TempDir()})
		}
	})
}
