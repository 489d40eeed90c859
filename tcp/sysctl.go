package tcp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// SysctlLineError is an error from ParseSysctl for one line.
type SysctlLineError struct {
	Line int   // 1-based line number
	Err  error // usually a *SysctlError
}

func (e *SysctlLineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *SysctlLineError) Unwrap() error { return e.Err }

// ParseSysctl reads settings in sysctl.conf(5) format and applies them to c:
//
//	# comment            ; comment
//	net.ipv4.tcp_syn_retries = 3
//	net/ipv4/tcp_rmem = 4096 131072 6291456
//	-net.ipv4.tcp_nonexistent = 1   (leading '-': errors on this line ignored)
//
// Blank lines and lines starting with '#' or ';' are skipped; the name and
// value are separated by the first '=' and trimmed of surrounding blanks.
// All lines are checked; if any line (without the '-' prefix) fails, c is
// left unchanged and the returned error joins one *SysctlLineError per bad
// line. Otherwise every setting is applied in order (later lines win).
func ParseSysctl(r io.Reader, c *Config) error {
	work := *c
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		ignore := false
		if s[0] == '-' {
			ignore = true
			s = strings.TrimSpace(s[1:])
		}
		name, value, ok := strings.Cut(s, "=")
		var err error
		switch {
		case !ok:
			err = fmt.Errorf("missing '=' in %q", s)
		case strings.TrimSpace(name) == "":
			err = errors.New("missing sysctl name before '='")
		default:
			err = work.Set(strings.TrimSpace(name), strings.TrimSpace(value))
		}
		if err != nil && !ignore {
			errs = append(errs, &SysctlLineError{Line: line, Err: err})
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("after line %d: %w", line, err))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*c = work
	return nil
}

// WriteSysctl writes every sysctl of c in sysctl.conf format, one
// "name = value" line each, sorted by name (like `sysctl -a`). The output
// parses back with ParseSysctl to the same sysctl values.
func WriteSysctl(w io.Writer, c *Config) error {
	bw := bufio.NewWriter(w)
	for _, name := range SysctlNames() {
		v, err := c.Get(name)
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "%s = %s\n", name, v)
	}
	return bw.Flush()
}
