package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ustack/ustack"
)

// stdin is what ustack dial sends (a variable for tests).
var stdin io.Reader = os.Stdin

// peerServer starts a built-in server in mode on the far stack of a pipe,
// for dial and get self-tests. The returned stop ends it.
func peerServer(far *ustack.Stack, mode, port string) (stop func(), cert *tls.Certificate, err error) {
	ln, err := far.Listen("tcp", ":"+port)
	if err != nil {
		return nil, nil, err
	}
	if mode == "https" {
		c, _, err := selfSigned(pipeFar.Addr())
		if err != nil {
			ln.Close()
			return nil, nil, err
		}
		cert = &c
	}
	a := startApp(ln, mode, far, cert, io.Discard)
	return a.stop, cert, nil
}

func runDial(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ustack dial", "ustack dial --tun NAME --addr CIDR [--gw IP] HOST:PORT\n"+
		"       ustack dial --pipe 10.0.0.2:PORT   (a built-in echo server on the other end)\n\n"+
		"Connects with the ustack stack and copies standard input to the connection and the\n"+
		"connection to standard output (like nc); at the end of input it half-closes.", stderr)
	var n netFlags
	n.register(fs, "dial over an in-memory link to a built-in echo server at 10.0.0.2 (self-test)")
	timeout := fs.Duration("timeout", 30*time.Second, "connect timeout")
	verbose := fs.Bool("v", false, "print the connection's tcp_info (like ss -ti) to standard error at the end")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if err := n.check(); err != nil || len(pos) != 1 {
		if err == nil {
			err = errors.New("want one HOST:PORT")
		}
		fmt.Fprintln(stderr, "ustack dial:", err)
		fs.Usage()
		return 2
	}
	_, port, err := net.SplitHostPort(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "ustack dial:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var s *ustack.Stack
	if n.pipe {
		near, far, err := n.openPipe()
		if err != nil {
			fmt.Fprintln(stderr, "ustack dial:", err)
			return 1
		}
		defer far.Close()
		defer near.Close()
		stopSrv, _, err := peerServer(far, "echo", port)
		if err != nil {
			fmt.Fprintln(stderr, "ustack dial:", err)
			return 1
		}
		defer stopSrv()
		s = near
	} else {
		if s, _, err = n.openTUN(); err != nil {
			fmt.Fprintln(stderr, "ustack dial:", err)
			return 1
		}
		defer s.Close()
	}
	dctx, cancel := context.WithTimeout(ctx, *timeout)
	c, err := s.DialContext(dctx, "tcp", pos[0])
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "ustack dial:", err)
		return 1
	}
	tc := c.(*ustack.TCPConn)
	defer tc.Close()
	go func() {
		<-ctx.Done()
		tc.Close()
	}()
	werr := make(chan error, 1)
	go func() {
		_, err := io.Copy(tc, stdin)
		if err == nil {
			err = tc.CloseWrite()
		}
		werr <- err
	}()
	_, rerr := io.Copy(stdout, tc)
	if *verbose {
		for _, ci := range s.Connections() {
			if ci.Local == netipAddrPort(tc.LocalAddr()) {
				fmt.Fprintln(stderr, ci.String())
			}
		}
	}
	if rerr != nil {
		fmt.Fprintln(stderr, "ustack dial:", rerr)
		return 1
	}
	select {
	case err := <-werr:
		if err != nil {
			fmt.Fprintln(stderr, "ustack dial:", err)
			return 1
		}
	default: // the peer closed before our input ended
	}
	return 0
}

func netipAddrPort(a net.Addr) (ap netip.AddrPort) {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return ap
}

func runGet(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ustack get", "ustack get --tun NAME --addr CIDR [--gw IP] [-k] [-o FILE] URL\n"+
		"       ustack get --pipe [-o FILE] http://10.0.0.2:8080/bytes/1000000   (a built-in server on the other end)\n\n"+
		"Fetches URL with net/http over the ustack stack; the body goes to standard output\n"+
		"(or -o FILE), the status and a transfer summary to standard error.", stderr)
	var n netFlags
	n.register(fs, "fetch over an in-memory link from a built-in http/https server at 10.0.0.2 (self-test; paths /, /bytes/N, /ss)")
	out := fs.String("o", "", "write the body to this file instead of standard output")
	insecure := fs.Bool("k", false, "https: do not verify the server's certificate")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	quiet := fs.Bool("q", false, "no summary on standard error")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if err := n.check(); err != nil || len(pos) != 1 {
		if err == nil {
			err = errors.New("want one URL")
		}
		fmt.Fprintln(stderr, "ustack get:", err)
		fs.Usage()
		return 2
	}
	u, err := url.Parse(pos[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "ustack get: want an http:// or https:// URL, got %q\n", pos[0])
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tr := &http.Transport{DisableKeepAlives: true}
	var s *ustack.Stack
	if n.pipe {
		near, far, err := n.openPipe()
		if err != nil {
			fmt.Fprintln(stderr, "ustack get:", err)
			return 1
		}
		defer far.Close()
		defer near.Close()
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		stopSrv, cert, err := peerServer(far, u.Scheme, port)
		if err != nil {
			fmt.Fprintln(stderr, "ustack get:", err)
			return 1
		}
		defer stopSrv()
		if cert != nil {
			pool := x509.NewCertPool()
			pool.AddCert(cert.Leaf)
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		}
		s = near
	} else {
		if s, _, err = n.openTUN(); err != nil {
			fmt.Fprintln(stderr, "ustack get:", err)
			return 1
		}
		defer s.Close()
	}
	if *insecure {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.InsecureSkipVerify = true
	}
	var conn *ustack.TCPConn
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := s.DialContext(ctx, network, addr)
		if err == nil {
			conn = c.(*ustack.TCPConn)
		}
		return c, err
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	if err != nil {
		fmt.Fprintln(stderr, "ustack get:", err)
		return 2
	}
	req.Header.Set("User-Agent", "ustack-get")
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "ustack get:", err)
		return 1
	}
	defer resp.Body.Close()
	var w io.Writer = stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintln(stderr, "ustack get:", err)
			return 1
		}
		w = f
	}
	nb, err := io.Copy(w, resp.Body)
	el := time.Since(start)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "ustack get:", err)
		return 1
	}
	if !*quiet {
		fmt.Fprintf(stderr, "%s %s: %d bytes in %v (%.1f Mbit/s)\n", resp.Proto, resp.Status, nb, el.Round(time.Microsecond), float64(nb)*8/el.Seconds()/1e6)
		if conn != nil {
			i := conn.Info()
			fmt.Fprintf(stderr, "connection %s > %s: rtt %v cwnd %d retrans %d\n", conn.LocalAddr(), conn.RemoteAddr(), i.RTT, i.SndCwnd, i.TotalRetrans)
		}
	}
	if resp.StatusCode >= 400 {
		return 1
	}
	return 0
}
