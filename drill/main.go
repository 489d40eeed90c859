package drill

import (
	"flag"
	"fmt"
	"io"
	"time"
)

// Main implements `ustack drill [flags] FILE...`: it runs each script and
// prints PASS or FAIL per script with the first mismatch. It returns the
// process exit status (0 all passed, 1 a script failed, 2 usage).
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tol := fs.Int("tolerance_usecs", int(DefaultTolerance/time.Microsecond), "allowed deviation from scripted times, in microseconds")
	verbose := fs.Bool("v", false, "trace every packet and call")
	v6 := fs.Bool("ipv6", false, "run the scripts over IPv6")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ustack drill [--tolerance_usecs N] [-v] [--ipv6] FILE...")
		fmt.Fprintln(stderr, "Runs packetdrill scripts against ustack's TCP engine on virtual time.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	status := 0
	for _, path := range fs.Args() {
		opt := Options{Tolerance: time.Duration(*tol) * time.Microsecond, IPv6: *v6}
		if *verbose {
			opt.Log = stdout
			fmt.Fprintf(stdout, "== %s\n", path)
		}
		if err := RunFile(path, opt); err != nil {
			fmt.Fprintf(stdout, "FAIL %s: %v\n", path, err)
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "PASS %s\n", path)
	}
	return status
}
