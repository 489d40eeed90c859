package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/control"
)

type serveOpts struct {
	netFlags
	listen  string
	mode    string
	control string
	certOut string
	size    int
	timeout time.Duration
	cert    *tls.Certificate // https: made by serveOn when nil
}

// baseContext is the context serve runs under until SIGINT/SIGTERM (tests
// replace it to stop a server).
var baseContext = context.Background

var serveModes = []string{"echo", "discard", "http", "https"}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ustack serve", "ustack serve --tun NAME --addr CIDR [--gw IP] [--listen :PORT] [--mode echo|discard|http|https] [--control PATH] [--sysctl name=value]...\n"+
		"       ustack serve --pipe [--mode MODE] [--size N] [--loss P] [--delay D]   (self-test: a built-in client on a second stack)", stderr)
	var o serveOpts
	o.register(fs, "instead of a TUN device, serve on an in-memory link and run a built-in client against it (self-test), then exit")
	fs.StringVar(&o.listen, "listen", ":8080", "address to listen on (\":PORT\" = every address of the stack)")
	fs.StringVar(&o.mode, "mode", "http", "what to serve: echo, discard, http or https (self-signed certificate)")
	fs.StringVar(&o.control, "control", "", "also serve a control socket at this path (for ustack ss and ustack stat)")
	fs.StringVar(&o.certOut, "cert-out", "", "with --mode https: write the generated certificate (PEM) to this file, e.g. for curl --cacert")
	fs.IntVar(&o.size, "size", 1<<20, "with --pipe: bytes the built-in client sends (echo, discard) or fetches (http, https)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "with --pipe: give up after this long")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if err := o.validate(pos); err != nil {
		fmt.Fprintln(stderr, "ustack serve:", err)
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(baseContext(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.pipe {
		if err := serveSelfTest(ctx, &o, stdout); err != nil {
			fmt.Fprintln(stderr, "ustack serve --pipe:", err)
			return 1
		}
		return 0
	}
	if err := serveTUN(ctx, &o, stdout, nil); err != nil {
		fmt.Fprintln(stderr, "ustack serve:", err)
		return 1
	}
	return 0
}

func (o *serveOpts) validate(pos []string) error {
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err := o.check(); err != nil {
		return err
	}
	ok := false
	for _, m := range serveModes {
		ok = ok || m == o.mode
	}
	if !ok {
		return fmt.Errorf("--mode %q: want one of %s", o.mode, strings.Join(serveModes, ", "))
	}
	if o.size <= 0 || o.size > 1<<30 {
		return errors.New("--size must be in 1..1073741824")
	}
	if o.certOut != "" && o.mode != "https" {
		return errors.New("--cert-out applies to --mode https")
	}
	return nil
}

// app is a running server: one of the modes on a listener.
type app struct {
	stop func()
}

// startApp serves mode on ln until stop. For https, cert is used.
// Server errors (bad TLS handshakes, ...) are logged to logw.
func startApp(ln net.Listener, mode string, s *ustack.Stack, cert *tls.Certificate, logw io.Writer) *app {
	switch mode {
	case "http", "https":
		if mode == "https" {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
		}
		srv := &http.Server{Handler: httpHandler(s), ReadHeaderTimeout: 30 * time.Second,
			ErrorLog: log.New(logw, "ustack serve: ", log.LstdFlags)}
		done := make(chan struct{})
		go func() { srv.Serve(ln); close(done) }()
		return &app{stop: func() { srv.Close(); <-done }}
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if mode == "echo" {
					io.Copy(c, c)
				} else {
					io.Copy(io.Discard, c)
				}
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	return &app{stop: func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}}
}

const helloBody = "hello from ustack, a userspace TCP/IP stack in Go\n"

// httpHandler: "/" says hello, "/bytes/N" sends N bytes, "/ss" lists the
// stack's connections.
func httpHandler(s *ustack.Stack) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, helloBody)
	})
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 || n > 1<<30 {
			http.Error(w, "want /bytes/N with N in 0..1073741824", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		buf := pattern(min(n, 64<<10))
		for n > 0 {
			k := min(n, len(buf))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("/ss", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeSS(w, control.ConnsOf(s.Connections()), false)
	})
	return mux
}

// pattern returns n bytes of a repeating alphabet (a 64 KiB period so a
// shifted copy is detected).
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// serveTUN runs the server on a TUN device until ctx ends. ready, if not
// nil, is called once the stack listens (tests use it to configure the
// device's host side).
func serveTUN(ctx context.Context, o *serveOpts, stdout io.Writer, ready func(s *ustack.Stack)) error {
	s, pfx, err := o.openTUN()
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stdout, "ustack serve: %s on %s %s (%s), listening on %s\n", o.mode, o.tun, o.addr, o.mtuNote(), o.listen)
	fmt.Fprintf(stdout, "  configure the host side if you have not: ip addr add <peer>/%d dev %s && ip link set %s up\n", pfx.Bits(), o.tun, o.tun)
	return serveOn(ctx, o, s, pfx.Addr(), stdout, func() {
		if ready != nil {
			ready(s)
		}
	})
}

func (o *serveOpts) mtuNote() string { return "mtu " + strconv.Itoa(o.mtu) }

// serveOn listens on s, serves o.mode (and the control socket) until ctx
// ends.
func serveOn(ctx context.Context, o *serveOpts, s *ustack.Stack, addr netip.Addr, stdout io.Writer, ready func()) error {
	ln, err := s.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	cert := o.cert
	if o.mode == "https" && cert == nil {
		c, certPEM, err := selfSigned(addr)
		if err != nil {
			ln.Close()
			return err
		}
		cert = &c
		fmt.Fprintf(stdout, "  self-signed certificate for %s and localhost, SHA-256 %s...\n", addr, fingerprint(c))
		if o.certOut != "" {
			if err := os.WriteFile(o.certOut, certPEM, 0o644); err != nil {
				ln.Close()
				return err
			}
		}
	}
	a := startApp(ln, o.mode, s, cert, stdout)
	defer a.stop()
	if o.control != "" {
		srv, err := control.Listen(o.control, s)
		if err != nil {
			return err
		}
		go srv.Serve()
		defer srv.Close()
		fmt.Fprintf(stdout, "  control socket %s (ustack ss --control %s)\n", o.control, o.control)
	}
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	return nil
}

// serveSelfTest serves on the far end of an in-memory link and runs the
// built-in client from the near end.
func serveSelfTest(ctx context.Context, o *serveOpts, stdout io.Writer) error {
	near, far, err := o.openPipe()
	if err != nil {
		return err
	}
	defer near.Close()
	defer far.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	port := strings.TrimPrefix(o.listen[strings.LastIndex(o.listen, ":"):], ":")
	target := net.JoinHostPort(pipeFar.Addr().String(), port)
	fmt.Fprintf(stdout, "ustack serve --pipe: %s server on %s, built-in client on %s over an in-memory link (%v delay, %.1f%% loss)\n",
		o.mode, target, pipeNear.Addr(), o.delay, o.loss*100)

	srvCtx, stopSrv := context.WithCancel(ctx)
	srvDone := make(chan error, 1)
	readyc := make(chan struct{})
	if o.mode == "https" {
		c, _, err := selfSigned(pipeFar.Addr())
		if err != nil {
			stopSrv()
			return err
		}
		o.cert = &c
		fmt.Fprintf(stdout, "  self-signed certificate for %s, SHA-256 %s...\n", pipeFar.Addr(), fingerprint(c))
	}
	go func() {
		srvDone <- serveOn(srvCtx, o, far, pipeFar.Addr(), stdout, func() { close(readyc) })
	}()
	select {
	case <-readyc:
	case err := <-srvDone:
		stopSrv()
		return err
	}
	start := time.Now()
	n, info, err := selfTestClient(ctx, o, near, target)
	el := time.Since(start)
	stopSrv()
	if serr := <-srvDone; err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "self-test ok: %s %d bytes in %v (%.1f Mbit/s); segments retransmitted: client %d, server %d\n",
		o.mode, n, el.Round(time.Microsecond), float64(n)*8/el.Seconds()/1e6, near.Stats().TCP.RetransSegs, far.Stats().TCP.RetransSegs)
	if info != "" {
		fmt.Fprintf(stdout, "client connection: %s\n", info)
	}
	return nil
}

// selfTestClient exercises the server in o.mode and returns the bytes
// moved and the ss line of the connection at the end.
func selfTestClient(ctx context.Context, o *serveOpts, s *ustack.Stack, target string) (int, string, error) {
	switch o.mode {
	case "http", "https":
		tr := &http.Transport{DialContext: s.DialContext, DisableKeepAlives: true}
		scheme := "http"
		if o.mode == "https" {
			scheme = "https"
			// The client trusts exactly the certificate the server uses.
			pool := x509.NewCertPool()
			pool.AddCert(o.cert.Leaf)
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		}
		hc := &http.Client{Transport: tr}
		url := fmt.Sprintf("%s://%s/bytes/%d", scheme, target, o.size)
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return 0, "", err
		}
		var line string
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		body, err := io.ReadAll(resp.Body)
		for _, ci := range s.Connections() {
			line = ci.String()
		}
		resp.Body.Close()
		if err != nil {
			return 0, "", err
		}
		if resp.StatusCode != 200 || len(body) != o.size || !bytes.Equal(body[:min(len(body), 26)], pattern(min(len(body), 26))) {
			return 0, "", fmt.Errorf("GET %s: %s, %d bytes (want 200 and %d bytes)", url, resp.Status, len(body), o.size)
		}
		return len(body), line, nil
	}
	c, err := s.DialContext(ctx, "tcp", target)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	data := pattern(o.size)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*ustack.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, rerr := io.ReadAll(c)
	if err := <-werr; err != nil {
		return 0, "", err
	}
	if rerr != nil {
		return 0, "", rerr
	}
	line := c.(*ustack.TCPConn).Info().State.String()
	for _, ci := range s.Connections() {
		line = ci.String()
	}
	if o.mode == "echo" && !bytes.Equal(got, data) {
		return 0, "", fmt.Errorf("echo: got %d bytes back, want the %d sent", len(got), len(data))
	}
	if o.mode == "discard" && len(got) != 0 {
		return 0, "", fmt.Errorf("discard server sent %d bytes", len(got))
	}
	return len(data), line, nil
}
