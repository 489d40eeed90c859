package main

import (
	"context"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ustack/ustack/link"
	"golang.org/x/sys/unix"
)

// kernelSystem is the Linux kernel's TCP used through Go's net package.
//
// Clean links: loopback. Running as root, it lives in a private network
// namespace this process creates (no name, no bind mount: it vanishes with
// the process) whose lo gets the benchmark's MTU; without root it falls back
// to 127.0.0.1 in the current namespace at lo's own MTU.
//
// Impaired links: two private namespaces (client and server), each with a
// TUN device; this process forwards packets between the two TUNs through
// link.Impair, the same impairment code the other systems' links use (the
// kernel here has no netem).
type kernelSystem struct {
	cns, sns *netns // client and server namespaces; nil = current namespace
	cc       string
	srvAddr  string
	links    []link.Endpoint
	fwd      sync.WaitGroup
}

func kernelUnsupported(b string, cfg NetConfig) string {
	switch b {
	case "memory":
		return "kernel socket memory is not Go heap"
	}
	if os.Geteuid() != 0 && (cfg.Impair != nil || cfg.MTU != 0) {
		return "needs root for a private netns (lo MTU, TUN)"
	}
	return ""
}

func newKernel(cfg NetConfig) (System, error) {
	k := &kernelSystem{cc: cfg.CC, srvAddr: "127.0.0.1"}
	if os.Geteuid() != 0 {
		return k, nil
	}
	if cfg.Impair != nil {
		if err := k.setupTUN(cfg); err != nil {
			k.Close()
			return nil, err
		}
		return k, nil
	}
	ns, err := newNetns()
	if err != nil {
		return nil, err
	}
	k.cns, k.sns = ns, ns
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = 65536
	}
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up", "mtu", strconv.Itoa(mtu)},
		{"sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535"},
	} {
		if err := ns.run(c...); err != nil {
			ns.close()
			return nil, err
		}
	}
	return k, nil
}

// setupTUN builds the impaired two-namespace path.
func (k *kernelSystem) setupTUN(cfg NetConfig) error {
	var err error
	if k.cns, err = newNetns(); err != nil {
		return err
	}
	if k.sns, err = newNetns(); err != nil {
		return err
	}
	k.srvAddr = "10.0.0.2"
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = 1500
	}
	var tuns [2]link.Endpoint
	for i, ns := range []*netns{k.cns, k.sns} {
		var ep link.Endpoint
		ns.exec(func() { ep, err = link.OpenTUN("ubench0", mtu) })
		if err != nil {
			return fmt.Errorf("kernel: %w", err)
		}
		tuns[i] = ep
		k.links = append(k.links, ep)
		addr := fmt.Sprintf("10.0.0.%d/24", i+1)
		for _, c := range [][]string{
			{"ip", "link", "set", "lo", "up"},
			{"ip", "addr", "add", addr, "dev", "ubench0"},
			{"ip", "link", "set", "ubench0", "up"},
			{"sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535"},
		} {
			if err := ns.run(c...); err != nil {
				return err
			}
		}
	}
	// Packets the client kernel sends come out of tuns[0] and go, impaired,
	// into tuns[1]; and back the other way.
	ia, ib := *cfg.Impair, *cfg.Impair
	ib.Seed = ia.Seed + 1
	toServer := link.Impair(tuns[1], ia)
	toClient := link.Impair(tuns[0], ib)
	k.links = append(k.links, toServer, toClient)
	for _, p := range [][2]link.Endpoint{{tuns[0], toServer}, {tuns[1], toClient}} {
		k.fwd.Add(1)
		go func() {
			defer k.fwd.Done()
			buf := make([]byte, mtu)
			for {
				n, err := p[0].ReadPacket(buf)
				if err != nil {
					return
				}
				p[1].WritePacket(buf[:n])
			}
		}()
	}
	return nil
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
	exec(func() {
		lc := net.ListenConfig{Control: k.control}
		ln, err = lc.Listen(context.Background(), "tcp4", k.srvAddr+":"+strconv.Itoa(port))
	}, k.sns)
	return ln, err
}

func (k *kernelSystem) Dial(ctx context.Context, port int) (net.Conn, error) {
	var c net.Conn
	var err error
	exec(func() {
		d := net.Dialer{Control: k.control}
		c, err = d.DialContext(ctx, "tcp4", k.srvAddr+":"+strconv.Itoa(port))
	}, k.cns)
	return c, err
}

// exec runs f on a thread in ns (nil: here).
func exec(f func(), ns *netns) {
	if ns == nil {
		f()
		return
	}
	ns.exec(f)
}

func (k *kernelSystem) Close() error {
	for _, l := range k.links {
		l.Close()
	}
	k.fwd.Wait()
	for _, ns := range []*netns{k.cns, k.sns} {
		if ns != nil {
			ns.close()
		}
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
	cmd := osexec.CommandContext(ctx, "nsenter", append([]string{"--net=" + nsPath, "--"}, args...)...)
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
