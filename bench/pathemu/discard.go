//go:build linux

package pathemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
)

// discardServer is the one-off discard server (MaybeServeDiscard) that a
// userspace sender's flow runs in namespace B.
type discardServer struct {
	cmd        *exec.Cmd
	sout, serr bytes.Buffer
}

// startDiscard runs helper in namespace B as a discard server on dst and
// waits until it listens.
func startDiscard(ctx context.Context, p *Path, helper string, dst netip.AddrPort) (*discardServer, error) {
	if helper == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		helper = exe
	}
	d := &discardServer{cmd: exec.CommandContext(ctx, "ip", "netns", "exec", p.NSB, helper)}
	d.cmd.Env = append(os.Environ(), DiscardEnv+"="+dst.String())
	d.cmd.Stdout, d.cmd.Stderr = &d.sout, &d.serr
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("pathemu: discard server: %w", err)
	}
	if err := WaitListen(ctx, p.NSB, int(dst.Port()), 5*time.Second); err != nil {
		d.kill()
		return nil, err
	}
	return d, nil
}

// kill stops the server and reaps it.
func (d *discardServer) kill() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
}

// wait waits for the server to exit (it does at the sender's EOF), killing
// it after limit.
func (d *discardServer) wait(limit time.Duration) {
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		d.cmd.Process.Kill()
		<-done
	}
}

// fill puts the server's byte count and goodput into r and joins the
// sender's error sendErr with the server's.
func (d *discardServer) fill(r *Result, sendErr error) error {
	var res DiscardResult
	if err := json.Unmarshal(d.sout.Bytes(), &res); err != nil {
		return fmt.Errorf("pathemu: %s: discard server output %q: %v (%s)", r.Name, d.sout.String(), err, strings.TrimSpace(d.serr.String()))
	}
	r.Bytes, r.Seconds = res.Bytes, res.Seconds
	if res.Seconds > 0 {
		r.GoodputBps = float64(res.Bytes) * 8 / res.Seconds
	}
	var errs []error
	if sendErr != nil {
		errs = append(errs, fmt.Errorf("pathemu: %s send: %w", r.Name, sendErr))
	}
	if res.Error != "" {
		errs = append(errs, fmt.Errorf("pathemu: %s discard server: %s", r.Name, res.Error))
	}
	return errors.Join(errs...)
}
