package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/sim"
	"github.com/ustack/ustack/tcp"
)

// runRealDemo runs the demo on real time: two ustack Stacks joined by an
// in-memory link.Pipe with link.Impair on both directions; net/http serves
// and fetches over them.
func runRealDemo(stdout io.Writer, o sim.DemoOptions, timeout time.Duration, pcap io.Writer) error {
	cfg := tcp.DefaultConfig()
	if err := sim.ApplySysctls(&cfg, o.Sysctls); err != nil {
		return err
	}
	pa, pb := link.Pipe(1500)
	im := link.Impairment{Delay: o.Delay, Loss: o.Loss, RateBps: o.RateBps, QueueLen: o.Queue, Seed: int64(o.Seed)}
	client, err := ustack.New(ustack.Config{TCP: cfg})
	if err != nil {
		return err
	}
	defer client.Close()
	server, err := ustack.New(ustack.Config{TCP: cfg})
	if err != nil {
		return err
	}
	defer server.Close()
	var cep link.Endpoint = link.Impair(pa, im)
	if pcap != nil {
		// The client's view: what it sends (before the link's impairments)
		// and what reaches it.
		if cep, err = link.Pcap(cep, pcap); err != nil {
			return err
		}
	}
	if err := client.AddInterface("eth0", cep, netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		return err
	}
	im.Seed++
	if err := server.AddInterface("eth0", link.Impair(pb, im), netip.MustParsePrefix("10.0.0.2/24")); err != nil {
		return err
	}
	ln, err := server.Listen("tcp", "10.0.0.2:80")
	if err != nil {
		return err
	}
	body := make([]byte, o.Size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return client.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	fmt.Fprintf(stdout, "ustack demo --real: net/http on two ustack stacks over an in-memory link (real time)\n")
	fmt.Fprintf(stdout, "%v one-way delay, %.1f%% loss each way; GET http://10.0.0.2/ (%d bytes)\n\n", o.Delay, o.Loss*100, o.Size)
	start := time.Now()
	resp, err := hc.Get("http://10.0.0.2/")
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return err
	}
	if n != int64(o.Size) {
		return errors.New("short response body")
	}
	cs, ss := client.Stats().TCP, server.Stats().TCP
	fmt.Fprintf(stdout, "transfer summary\n")
	fmt.Fprintf(stdout, "  response:         %s, %d body bytes\n", resp.Status, n)
	fmt.Fprintf(stdout, "  wall time:        %v (connect to end of body)\n", d.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  goodput:          %.3f Mbit/s\n", float64(n)*8/d.Seconds()/1e6)
	fmt.Fprintf(stdout, "  retransmissions:  server %d (%d fast, %d timeouts), client %d\n",
		ss.RetransSegs, ss.TCPFastRetrans, ss.TCPTimeouts, cs.RetransSegs)
	fmt.Fprintf(stdout, "  segments:         server %d out / %d in, client %d out / %d in\n", ss.OutSegs, ss.InSegs, cs.OutSegs, cs.InSegs)
	return nil
}
