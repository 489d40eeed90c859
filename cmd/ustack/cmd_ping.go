package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ustack/ustack"
)

func runPing(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ustack ping", "ustack ping --tun NAME --addr CIDR [--gw IP] [-c N] [-i DUR] [-W DUR] [-s BYTES] HOST\n"+
		"       ustack ping --pipe 10.0.0.2   (the other end of an in-memory link)\n\n"+
		"Sends ICMP echo requests (ICMPv6 for an IPv6 address) from the ustack stack and\n"+
		"prints each reply's round-trip time and a summary, like ping(8). Exits 1 when no\n"+
		"reply came back.", stderr)
	var n netFlags
	n.register(fs, "ping over an in-memory link; the far stack is 10.0.0.2 (self-test)")
	count := fs.Int("c", 4, "number of echo requests")
	interval := fs.Duration("i", time.Second, "time between requests")
	wait := fs.Duration("W", time.Second, "how long to wait for each reply")
	size := fs.Int("s", 56, "payload bytes per request")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if err == nil {
		err = n.check()
	}
	var dst netip.Addr
	if err == nil && len(pos) != 1 {
		err = errors.New("want one HOST address")
	}
	if err == nil {
		if dst, err = netip.ParseAddr(pos[0]); err != nil {
			err = fmt.Errorf("HOST: %w", err)
		}
	}
	if err == nil && (*count < 1 || *interval < 0 || *wait <= 0 || *size < 0 || *size > 65000) {
		err = errors.New("-c must be at least 1, -i not negative, -W positive, -s in 0..65000")
	}
	if err != nil {
		fmt.Fprintln(stderr, "ustack ping:", err)
		fs.Usage()
		return 2
	}
	var s *ustack.Stack
	if n.pipe {
		near, far, err := n.openPipe()
		if err != nil {
			fmt.Fprintln(stderr, "ustack ping:", err)
			return 1
		}
		defer far.Close()
		defer near.Close()
		s = near
	} else {
		if s, _, err = n.openTUN(); err != nil {
			fmt.Fprintln(stderr, "ustack ping:", err)
			return 1
		}
		defer s.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	payload := pattern(*size)
	fmt.Fprintf(stdout, "PING %s: %d data bytes\n", dst, *size)
	var sent, got int
	var min, max, sum time.Duration
	for seq := 1; seq <= *count && ctx.Err() == nil; seq++ {
		if seq > 1 && *interval > 0 {
			select {
			case <-time.After(*interval):
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		sent++
		wctx, cancel := context.WithTimeout(ctx, *wait)
		rtt, err := s.Ping(wctx, dst, seq, payload)
		cancel()
		if err != nil {
			fmt.Fprintf(stdout, "no reply for icmp_seq=%d: %v\n", seq, err)
			continue
		}
		got++
		sum += rtt
		if got == 1 || rtt < min {
			min = rtt
		}
		if rtt > max {
			max = rtt
		}
		fmt.Fprintf(stdout, "%d bytes from %s: icmp_seq=%d time=%.3f ms\n", *size+8, dst, seq, ms(rtt))
	}
	fmt.Fprintf(stdout, "--- %s ping statistics ---\n", dst)
	fmt.Fprintf(stdout, "%d packets transmitted, %d received, %.0f%% packet loss\n", sent, got, 100*float64(sent-got)/float64(max1(sent)))
	if got == 0 {
		return 1
	}
	fmt.Fprintf(stdout, "rtt min/avg/max = %.3f/%.3f/%.3f ms\n", ms(min), ms(sum/time.Duration(got)), ms(max))
	return 0
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}
