package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// kernelSystem is the Linux kernel's TCP over a loopback device, used
// through Go's net package. When running as root it lives in a private
// network namespace this process creates (no name, no bind mount: it
// vanishes with the process), whose lo gets the benchmark's MTU and, for the
// impaired path, a netem qdisc with the same delay, loss and rate. Without
// root it falls back to 127.0.0.1 in the current namespace at lo's own MTU.
type kernelSystem struct {
	ns    *netns // nil = current namespace
	cc    string
	ports map[int]bool
}

// kernelMaker reports what the kernel system cannot do.
func kernelUnsupported(b string, cfg NetConfig) string {
	switch b {
	case "memory":
		return "kernel socket memory is not Go heap"
	}
	if os.Geteuid() != 0 && (cfg.Impair != nil || cfg.MTU != 0) {
		return "needs root for a private netns (lo MTU, netem)"
	}
	return ""
}

func newKernel(cfg NetConfig) (System, error) {
	k := &kernelSystem{cc: cfg.CC}
	if os.Geteuid() != 0 {
		return k, nil
	}
	ns, err := newNetns()
	if err != nil {
		return nil, err
	}
	k.ns = ns
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = 65536
	}
	cmds := [][]string{
		{"ip", "link", "set", "lo", "up", "mtu", strconv.Itoa(mtu)},
		{"sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535"},
	}
	if im := cfg.Impair; im != nil {
		// netem on lo delays and drops in both directions, like link.Impair
		// on both ends of the pipe.
		args := []string{"tc", "qdisc", "replace", "dev", "lo", "root", "netem",
			"delay", fmt.Sprintf("%dus", im.Delay.Microseconds())}
		if im.Loss > 0 {
			args = append(args, "loss", fmt.Sprintf("%g%%", im.Loss*100))
		}
		if im.RateBps > 0 {
			args = append(args, "rate", fmt.Sprintf("%dbit", im.RateBps))
		}
		limit := 1000
		if im.QueueLen > 0 {
			// netem's limit also holds the packets in their delay, so add
			// the packets one delay holds at full rate.
			limit = im.QueueLen + int(float64(im.RateBps)/8*im.Delay.Seconds()/1500)*2
		}
		args = append(args, "limit", strconv.Itoa(limit))
		cmds = append(cmds, args)
	}
	for _, c := range cmds {
		if err := ns.run(c...); err != nil {
			ns.close()
			return nil, err
		}
	}
	return k, nil
}

func (*kernelSystem) Name() string { return "kernel" }

func (k *kernelSystem) control(network, address string, c syscall.RawConn) error {
	if k.cc == "" {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, k.cc)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("kernel: TCP_CONGESTION %q: %w", k.cc, serr)
	}
	return nil
}

func (k *kernelSystem) Listen(port int) (net.Listener, error) {
	var ln net.Listener
	var err error
	k.exec(func() {
		lc := net.ListenConfig{Control: k.control}
		ln, err = lc.Listen(context.Background(), "tcp4", "127.0.0.1:"+strconv.Itoa(port))
	})
	return ln, err
}

func (k *kernelSystem) Dial(ctx context.Context, port int) (net.Conn, error) {
	var c net.Conn
	var err error
	k.exec(func() {
		d := net.Dialer{Control: k.control}
		c, err = d.DialContext(ctx, "tcp4", "127.0.0.1:"+strconv.Itoa(port))
	})
	return c, err
}

func (k *kernelSystem) exec(f func()) {
	if k.ns == nil {
		f()
		return
	}
	k.ns.exec(f)
}

func (k *kernelSystem) Close() error {
	if k.ns != nil {
		k.ns.close()
	}
	return nil
}

// netns is a private network namespace held by an open file and a pool of
// OS threads switched into it. Sockets keep the namespace they were created
// in, so only socket creation (Listen, Dial) runs on the pool.
type netns struct {
	fd   int
	reqs chan func()
	quit chan struct{}
}

const netnsWorkers = 8

func newNetns() (*netns, error) {
	type res struct {
		fd  int
		err error
	}
	ch := make(chan res)
	go func() {
		// This thread is never unlocked: it leaves the process with the
		// goroutine, so no other goroutine ever runs in the namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- res{-1, fmt.Errorf("kernel: unshare netns: %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		ch <- res{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	n := &netns{fd: r.fd, reqs: make(chan func()), quit: make(chan struct{})}
	errs := make(chan error)
	for range netnsWorkers {
		go func() {
			runtime.LockOSThread()
			if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
				errs <- fmt.Errorf("kernel: setns: %w", err)
				return
			}
			errs <- nil
			for {
				select {
				case f := <-n.reqs:
					f()
				case <-n.quit:
					return
				}
			}
		}()
	}
	var err error
	for range netnsWorkers {
		if e := <-errs; e != nil {
			err = e
		}
	}
	if err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *netns) exec(f func()) {
	done := make(chan struct{})
	n.reqs <- func() { f(); close(done) }
	<-done
}

// run runs a command (ip, tc, sysctl) inside the namespace.
func (n *netns) run(args ...string) error {
	nsPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), n.fd)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + nsPath, "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kernel: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *netns) close() {
	select {
	case <-n.quit:
		return
	default:
	}
	close(n.quit)
	unix.Close(n.fd)
}
