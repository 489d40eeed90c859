package tcpcopy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Dialer makes the connection that replays one captured session. The
// default, NetDialer, uses kernel sockets; a Dialer backed by the ustack
// stack over a TUN device can keep the captured client addresses.
type Dialer interface {
	DialSession(ctx context.Context, s *Session, address string) (net.Conn, error)
}

// NetDialer dials with the kernel's TCP (net.Dialer).
type NetDialer struct {
	Timeout time.Duration // connect timeout; 0 = 5 s
}

// DialSession dials address over TCP.
func (d NetDialer) DialSession(ctx context.Context, s *Session, address string) (net.Conn, error) {
	to := d.Timeout
	if to <= 0 {
		to = 5 * time.Second
	}
	nd := net.Dialer{Timeout: to, KeepAlive: -1}
	return nd.DialContext(ctx, "tcp", address)
}

// Options configure a Replayer.
type Options struct {
	// Target maps a captured session to the address to replay it to; ok
	// false skips the session. See PortMap.
	Target func(s *Session) (address string, ok bool)
	// Dialer makes the connections; nil means NetDialer{}.
	Dialer Dialer
	// Speed scales the captured timing: 1 replays in real time, 2 twice as
	// fast, 0 as fast as possible (responses are still awaited).
	Speed float64
	// Copies replays every session this many times (amplification); 0 = 1.
	Copies int
	// Concurrency bounds the connections replaying at once; 0 = 256.
	// Submit blocks while the limit is reached, which also bounds memory.
	Concurrency int
	// Wait is how long a replay waits for expected response bytes when the
	// target sends nothing more (quiet period); 0 = 2 s.
	Wait time.Duration
	// ReplayGaps replays sessions whose captured client stream has a hole
	// (the bytes on either side are sent back to back); by default they are
	// skipped and reported.
	ReplayGaps bool
	// IgnoreHeaders names HTTP/1.x response header fields (e.g. "Date")
	// left out of the comparison when the captured stream is HTTP: such
	// header lines are removed from both streams before they are compared,
	// and offsets then count in the streams without them. The replayed
	// response is kept in memory for this (up to the captured length plus
	// 1 MiB).
	IgnoreHeaders []string
	// SessionTimeout bounds each replayed connection beyond its captured
	// duration (scaled by Speed): reads and writes past captured duration /
	// Speed + SessionTimeout fail as timeouts. 0 = 60 s.
	SessionTimeout time.Duration
	// OnResult, if set, is called after each replayed connection (from the
	// replaying goroutine).
	OnResult func(*Result)
	// MaxProblems bounds the non-identical results kept in the report;
	// 0 = 1000.
	MaxProblems int
}

// Status is the outcome of comparing a replayed connection's response
// with the captured one.
type Status string

const (
	StatusIdentical  Status = "identical"
	StatusDiffers    Status = "differs"
	StatusShorter    Status = "shorter"
	StatusLonger     Status = "longer"
	StatusCaptureGap Status = "capture-gap"    // captured response has a hole; compared up to it and equal
	StatusNoConnect  Status = "connect-failed" // refused, timed out, unreachable
)

// Result is the outcome of one replayed connection.
type Result struct {
	Session       int           `json:"session"`
	Copy          int           `json:"copy"`
	Client        string        `json:"client"`
	Server        string        `json:"server"`
	Target        string        `json:"target"`
	Status        Status        `json:"status"`
	DiffOffset    int64         `json:"diff_offset"` // first differing response byte, -1 if none
	CapturedBytes int64         `json:"captured_response_bytes"`
	ReplayedBytes int64         `json:"replayed_response_bytes"`
	SentBytes     int64         `json:"sent_bytes"`
	Error         string        `json:"error,omitempty"`
	ErrorKind     string        `json:"error_kind,omitempty"` // refused, reset, timeout, other
	HTTPStatus    []string      `json:"http_status_mismatch,omitempty"`
	Gaps          []Gap         `json:"gaps,omitempty"`
	Duration      time.Duration `json:"duration_ns"`

	capturedTTFB []time.Duration
	replayedTTFB []time.Duration
}

// Replayer replays sessions to a target and collects a Report.
type Replayer struct {
	opts    Options
	sem     chan struct{}
	wg      sync.WaitGroup
	started time.Time
	origin  time.Time
	once    sync.Once

	mu  sync.Mutex
	rep *Report

	// progress counters
	done      atomic.Int64
	bytesDone atomic.Int64
}

// NewReplayer returns a replayer; call Submit for each session, then Wait.
func NewReplayer(opts Options) *Replayer {
	if opts.Dialer == nil {
		opts.Dialer = NetDialer{}
	}
	if opts.Copies <= 0 {
		opts.Copies = 1
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 256
	}
	if opts.Wait <= 0 {
		opts.Wait = 2 * time.Second
	}
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = 1000
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 60 * time.Second
	}
	if opts.Speed < 0 {
		opts.Speed = 0
	}
	return &Replayer{opts: opts, sem: make(chan struct{}, opts.Concurrency), rep: newReport()}
}

// SetOrigin sets the capture time that maps to the start of the replay
// (the capture's first packet). Without it the first submitted session's
// start is used.
func (r *Replayer) SetOrigin(t time.Time) {
	r.once.Do(func() {
		r.origin = t
		r.started = time.Now()
	})
}

// Progress returns replayed connections and response+request bytes so far.
func (r *Replayer) Progress() (conns, bytes int64) { return r.done.Load(), r.bytesDone.Load() }

// Submit replays s (Copies times) in the background. It blocks while
// Concurrency connections are in progress, and returns early with the
// context's error if ctx ends.
func (r *Replayer) Submit(ctx context.Context, s *Session) error {
	r.SetOrigin(s.Start)
	r.mu.Lock()
	r.rep.Sessions++
	addr, ok := "", false
	if r.opts.Target != nil {
		addr, ok = r.opts.Target(s)
	}
	skip := ""
	switch {
	case !ok:
		skip = "no target for server port"
	case s.ClientGap() && !r.opts.ReplayGaps:
		skip = "client stream has a gap"
	}
	if skip != "" {
		r.rep.Skipped[skip]++
		if len(r.rep.Problems) < r.opts.MaxProblems {
			r.rep.Problems = append(r.rep.Problems, &Result{Session: s.ID, Client: s.Client.String(), Server: s.Server.String(), Status: Status("skipped"), Error: skip, DiffOffset: -1, Gaps: s.Gaps})
		}
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	var due time.Time
	if r.opts.Speed > 0 {
		due = r.started.Add(time.Duration(float64(s.Start.Sub(r.origin)) / r.opts.Speed))
	}
	for c := 0; c < r.opts.Copies; c++ {
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.wg.Add(1)
		go func(c int) {
			defer r.wg.Done()
			defer func() { <-r.sem }()
			res := r.replay(ctx, s, c, addr, due)
			r.record(s, res)
		}(c)
	}
	return nil
}

// Wait waits for all submitted replays and returns the report.
func (r *Replayer) Wait() *Report {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started.IsZero() {
		r.rep.Elapsed = time.Since(r.started)
	}
	r.rep.finish()
	return r.rep
}

func (r *Replayer) record(s *Session, res *Result) {
	r.done.Add(1)
	r.bytesDone.Add(res.SentBytes + res.ReplayedBytes)
	if r.opts.OnResult != nil {
		r.opts.OnResult(res)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.add(res, r.opts.MaxProblems)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrorKind classifies a network error as refused, reset, timeout or other.
func ErrorKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return "reset"
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}

func (r *Replayer) replay(ctx context.Context, s *Session, copyNum int, addr string, due time.Time) *Result {
	res := &Result{Session: s.ID, Copy: copyNum, Client: s.Client.String(), Server: s.Server.String(), Target: addr,
		DiffOffset: -1, CapturedBytes: int64(len(s.ServerData)), Gaps: s.Gaps}
	if !due.IsZero() {
		if err := sleepUntil(ctx, due); err != nil {
			res.Status, res.Error, res.ErrorKind = StatusNoConnect, err.Error(), "other"
			return res
		}
	}
	begin := time.Now()
	defer func() { res.Duration = time.Since(begin) }()
	conn, err := r.opts.Dialer.DialSession(ctx, s, addr)
	if err != nil {
		res.Status, res.Error, res.ErrorKind = StatusNoConnect, err.Error(), ErrorKind(err)
		return res
	}
	limit := r.opts.SessionTimeout
	if r.opts.Speed > 0 {
		limit += time.Duration(float64(s.End.Sub(s.Start)) / r.opts.Speed)
	}
	conn.SetDeadline(begin.Add(limit))
	ctx, cancel := context.WithDeadline(ctx, begin.Add(limit))
	defer cancel()
	httpMode := bytes.HasPrefix(s.ServerData, []byte("HTTP/1."))
	rd := newRespReader(conn, s.ServerData, len(s.Exchanges), httpMode)
	normalize := httpMode && len(r.opts.IgnoreHeaders) > 0
	if normalize {
		rd.keepLimit = len(s.ServerData) + 1<<20
	}
	go rd.run()
	speed := r.opts.Speed
	wait := r.opts.Wait
	sendEnd := make([]time.Time, len(s.Exchanges))
	expected := 0
	var werr error
	for i, e := range s.Exchanges {
		if speed > 0 && i > 0 {
			if err := sleepUntil(ctx, begin.Add(time.Duration(float64(e.ReqStart.Sub(s.Exchanges[0].ReqStart))/speed))); err != nil {
				werr = err
				break
			}
		}
		rd.window.Store(int32(i))
		if e.ReqLen > 0 {
			n, err := conn.Write(s.ClientData[e.ReqOff : e.ReqOff+e.ReqLen])
			res.SentBytes += int64(n)
			if err != nil {
				werr = err
				break
			}
		}
		sendEnd[i] = time.Now()
		expected += e.RespLen
		if e.RespLen > 0 {
			if !rd.waitFor(ctx, int64(expected), wait) {
				break
			}
		}
	}
	if werr == nil {
		if s.ClientFIN {
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}
		if s.ClientFIN || s.ServerFIN {
			rd.waitFor(ctx, -1, wait) // until EOF or quiet
		}
	}
	if s.ClientRST && !s.ClientFIN {
		// The captured client aborted: end with a RST too.
		if l, ok := conn.(interface{ SetLinger(int) error }); ok {
			l.SetLinger(0)
		}
	}
	conn.Close()
	<-rd.done

	rd.mu.Lock()
	defer rd.mu.Unlock()
	res.ReplayedBytes = rd.got
	if werr != nil && res.Error == "" {
		res.Error, res.ErrorKind = werr.Error(), ErrorKind(werr)
	} else if rd.err != nil && !errors.Is(rd.err, net.ErrClosed) {
		res.Error, res.ErrorKind = rd.err.Error(), ErrorKind(rd.err)
	}
	want := int64(len(s.ServerData))
	gapAt := int64(s.ServerGapOffset())
	if normalize {
		captured := s.ServerData
		if gapAt >= 0 {
			captured = captured[:gapAt]
		}
		a := stripHeaders(captured, r.opts.IgnoreHeaders)
		b := stripHeaders(rd.kept, r.opts.IgnoreHeaders)
		if gapAt >= 0 {
			gapAt = int64(len(a))
		} else {
			want = int64(len(a))
		}
		rd.diffAt = -1
		for i := 0; i < min(len(a), len(b)); i++ {
			if a[i] != b[i] {
				rd.diffAt = int64(i)
				break
			}
		}
		rd.got = int64(len(b)) + (rd.got - int64(len(rd.kept)))
	}
	switch {
	case rd.diffAt >= 0 && (gapAt < 0 || rd.diffAt < gapAt):
		res.Status, res.DiffOffset = StatusDiffers, rd.diffAt
	case gapAt >= 0:
		res.Status = StatusCaptureGap
	case rd.got < want:
		res.Status, res.DiffOffset = StatusShorter, rd.got
	case rd.got > want:
		res.Status, res.DiffOffset = StatusLonger, want
	default:
		res.Status = StatusIdentical
	}
	for i, e := range s.Exchanges {
		if e.ReqLen > 0 && e.RespLen > 0 && !rd.first[i].IsZero() && !sendEnd[i].IsZero() {
			res.capturedTTFB = append(res.capturedTTFB, e.RespStart.Sub(e.ReqEnd))
			res.replayedTTFB = append(res.replayedTTFB, rd.first[i].Sub(sendEnd[i]))
		}
		if httpMode && e.RespLen > 0 {
			cl := statusLine(s.ServerData[e.RespOff : e.RespOff+e.RespLen])
			rl := statusLine(rd.head[i])
			if cl != "" && cl != rl {
				res.HTTPStatus = append(res.HTTPStatus, "exchange "+strconv.Itoa(i+1)+": captured "+quote(cl)+", replayed "+quote(rl))
			}
		}
	}
	return res
}

func quote(s string) string {
	if s == "" {
		return "(none)"
	}
	return "\"" + s + "\""
}

// statusLine returns the HTTP/1.x status line at the start of b, or "".
func statusLine(b []byte) string {
	if !bytes.HasPrefix(b, []byte("HTTP/1.")) {
		return ""
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), "\r")
}

// stripHeaders returns b without the HTTP/1.x response header lines named
// in names (case-insensitive). Header blocks are recognised as a line
// starting with "HTTP/1." up to the next empty line; body bytes are kept.
// The scan is a heuristic: it does not parse message lengths, so a body
// line starting with "HTTP/1." would be taken for a header block.
func stripHeaders(b []byte, names []string) []byte {
	out := make([]byte, 0, len(b))
	inHeader := false
	for len(b) > 0 {
		end := bytes.IndexByte(b, '\n')
		line := b
		if end >= 0 {
			line = b[:end+1]
		}
		b = b[len(line):]
		switch {
		case !inHeader && bytes.HasPrefix(line, []byte("HTTP/1.")):
			inHeader = true
		case inHeader && (string(line) == "\r\n" || string(line) == "\n"):
			inHeader = false
		case inHeader:
			if name, _, ok := bytes.Cut(line, []byte(":")); ok {
				drop := false
				for _, n := range names {
					if strings.EqualFold(string(bytes.TrimSpace(name)), n) {
						drop = true
						break
					}
				}
				if drop {
					continue
				}
			}
		}
		out = append(out, line...)
	}
	return out
}

// respReader reads a replayed connection's response bytes, compares them
// on the fly with the captured response and notes when each exchange's
// first byte came.
type respReader struct {
	conn   net.Conn
	want   []byte
	window atomic.Int32
	notify chan struct{}
	done   chan struct{}
	http   bool

	mu     sync.Mutex
	got    int64
	diffAt int64
	eof    bool
	err    error
	first  []time.Time
	head   [][]byte // first bytes of each exchange's response (HTTP mode)

	keepLimit int    // > 0: keep up to this many response bytes in kept
	kept      []byte // the response (IgnoreHeaders comparison)
}

func newRespReader(c net.Conn, want []byte, nex int, httpMode bool) *respReader {
	rd := &respReader{conn: c, want: want, notify: make(chan struct{}, 1), done: make(chan struct{}), diffAt: -1,
		first: make([]time.Time, max(nex, 1)), http: httpMode}
	if httpMode {
		rd.head = make([][]byte, max(nex, 1))
	}
	return rd
}

const headLen = 128

func (rd *respReader) run() {
	defer close(rd.done)
	buf := make([]byte, 32<<10)
	for {
		n, err := rd.conn.Read(buf)
		if n > 0 {
			now := time.Now()
			b := buf[:n]
			rd.mu.Lock()
			w := int(rd.window.Load())
			if w >= len(rd.first) {
				w = len(rd.first) - 1
			}
			if rd.first[w].IsZero() {
				rd.first[w] = now
			}
			if rd.http && len(rd.head[w]) < headLen {
				rd.head[w] = append(rd.head[w], b[:min(len(b), headLen-len(rd.head[w]))]...)
			}
			if rd.diffAt < 0 && rd.got < int64(len(rd.want)) {
				exp := rd.want[rd.got:]
				m := min(len(exp), len(b))
				for i := 0; i < m; i++ {
					if exp[i] != b[i] {
						rd.diffAt = rd.got + int64(i)
						break
					}
				}
			}
			if rd.keepLimit > 0 && len(rd.kept) < rd.keepLimit {
				rd.kept = append(rd.kept, b[:min(len(b), rd.keepLimit-len(rd.kept))]...)
			}
			rd.got += int64(n)
			rd.mu.Unlock()
			select {
			case rd.notify <- struct{}{}:
			default:
			}
		}
		if err != nil {
			rd.mu.Lock()
			if err == io.EOF {
				rd.eof = true
			} else {
				rd.err = err
			}
			rd.mu.Unlock()
			close(rd.notify)
			return
		}
	}
}

// waitFor waits until n response bytes have arrived (n < 0: until EOF),
// the connection ends, or nothing arrives for quiet. It reports whether
// the connection is still usable.
func (rd *respReader) waitFor(ctx context.Context, n int64, quiet time.Duration) bool {
	tm := time.NewTimer(quiet)
	defer tm.Stop()
	for {
		rd.mu.Lock()
		got, ended := rd.got, rd.eof || rd.err != nil
		rd.mu.Unlock()
		if ended {
			return false
		}
		if n >= 0 && got >= n {
			return true
		}
		select {
		case _, ok := <-rd.notify:
			if !ok {
				return false
			}
			if !tm.Stop() {
				select {
				case <-tm.C:
				default:
				}
			}
			tm.Reset(quiet)
		case <-tm.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
}
