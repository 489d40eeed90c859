package ustack

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ustack/ustack/tcp"
)

// TCPConn is a ustack TCP connection. It implements net.Conn and has the
// method set of *net.TCPConn, plus Info and State.
type TCPConn struct {
	e      *endpoint
	rd, wd deadline

	mu     sync.Mutex // guards linger
	linger int        // seconds; < 0: default close
}

var _ net.Conn = (*TCPConn)(nil)

func newTCPConn(e *endpoint) *TCPConn {
	return &TCPConn{
		e:      e,
		linger: -1,
	}
}

// opErr wraps err like the net package: *net.OpError around an
// *os.SyscallError for errno values.
func (c *TCPConn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		var se *os.SyscallError
		if !errors.As(err, &se) {
			err = os.NewSyscallError(op, errno)
		}
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// deadline is a settable deadline whose wait channel is closed when it
// passes. As in net.Pipe, an open channel is kept across set calls, so a
// goroutine already waiting on it sees a deadline set later; a channel is
// allocated only once somebody waits or a deadline is set.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func isClosedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	closed := d.cancel != nil && isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = nil
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if d.cancel == nil {
			d.cancel = closedChan
		} else if !closed {
			close(d.cancel)
		}
		return
	}
	if d.cancel == nil || closed {
		d.cancel = make(chan struct{})
	}
	ch := d.cancel
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

// stop releases a pending deadline timer, so a closed connection pins no
// timer, closure or channel until its deadline would have passed.
func (d *deadline) stop() {
	d.mu.Lock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.mu.Unlock()
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	return d.cancel
}

func (d *deadline) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel != nil && isClosedChan(d.cancel)
}

// engineErr is the error of a connection the engine ended.
func (e *endpoint) engineErrLocked() error {
	if err := e.tc.Err(); err != nil {
		return err
	}
	return nil
}

// Read reads data. It returns io.EOF after the peer's FIN (or CloseRead),
// os.ErrDeadlineExceeded (wrapped) when the read deadline passes, and
// syscall.ECONNRESET / ETIMEDOUT (wrapped) when the connection died.
func (c *TCPConn) Read(p []byte) (int, error) {
	e := c.e
	s := e.t.s
	for {
		if c.rd.passed() {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		e.sh.mu.Lock()
		if e.closed || s.isClosed() {
			e.sh.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		}
		if e.rdClosed {
			e.sh.mu.Unlock()
			return 0, io.EOF
		}
		if len(p) == 0 {
			e.sh.mu.Unlock()
			return 0, nil
		}
		if e.deferSyn {
			// Reading before writing on a Fast Open connect: the SYN
			// goes now, without data.
			e.deferSyn = false
			e.updateLocked(time.Now())
		}
		n, err := e.tc.Recv(p)
		if n > 0 {
			// Reading may open the window: let the engine announce it.
			e.updateLocked(time.Now())
			e.sh.mu.Unlock()
			return n, nil
		}
		if err == nil {
			err = e.engineErrLocked()
			if err == nil && e.tc.State() == tcp.Closed {
				err = io.EOF
			}
		}
		if err != nil {
			e.sh.mu.Unlock()
			if err == io.EOF {
				return 0, io.EOF
			}
			return 0, c.opErr("read", err)
		}
		if s.isClosed() {
			e.sh.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		}
		ch := e.rq.wait()
		e.sh.mu.Unlock()
		select {
		case <-ch:
		case <-c.rd.wait():
		case <-s.done:
		}
	}
}

// Write writes data, blocking while the send buffer is full.
func (c *TCPConn) Write(p []byte) (int, error) {
	e := c.e
	s := e.t.s
	total := 0
	for {
		if c.wd.passed() {
			return total, c.opErr("write", os.ErrDeadlineExceeded)
		}
		e.sh.mu.Lock()
		if e.closed || s.isClosed() {
			e.sh.mu.Unlock()
			return total, c.opErr("write", net.ErrClosed)
		}
		if err := e.engineErrLocked(); err != nil {
			e.sh.mu.Unlock()
			return total, c.opErr("write", err)
		}
		if len(p) > 0 {
			e.deferSyn = false // a Fast Open SYN carries this data
		}
		n, err := e.tc.Send(p[total:])
		total += n
		if n > 0 {
			e.updateLocked(time.Now())
		}
		if err != nil {
			e.sh.mu.Unlock()
			return total, c.opErr("write", err)
		}
		if total == len(p) {
			e.sh.mu.Unlock()
			return total, nil
		}
		if s.isClosed() {
			e.sh.mu.Unlock()
			return total, c.opErr("write", net.ErrClosed)
		}
		ch := e.wq.wait()
		e.sh.mu.Unlock()
		select {
		case <-ch:
		case <-c.wd.wait():
		case <-s.done:
		}
	}
}

// Close closes the connection: FIN after the queued data, or RST if
// received data is unread or SetLinger(0) was called. Pending and later
// calls return net.ErrClosed.
func (c *TCPConn) Close() error {
	e := c.e
	c.mu.Lock()
	linger := c.linger
	c.mu.Unlock()
	e.sh.mu.Lock()
	defer e.sh.mu.Unlock()
	if e.closed {
		return c.opErr("close", net.ErrClosed)
	}
	e.closed = true
	if e.deferSyn {
		// A Fast Open connect that never wrote: nothing was sent.
		e.deferSyn = false
		e.removeLocked()
	}
	if !e.removed.Load() {
		if linger == 0 {
			e.tc.Abort()
		} else {
			e.tc.Close()
		}
		e.updateLocked(time.Now())
	}
	e.rq.wake()
	e.wq.wake()
	c.rd.stop()
	c.wd.stop()
	return nil
}

// CloseRead shuts down the reading side: later reads return io.EOF.
func (c *TCPConn) CloseRead() error {
	e := c.e
	e.sh.mu.Lock()
	defer e.sh.mu.Unlock()
	if e.closed {
		return c.opErr("close", net.ErrClosed)
	}
	e.rdClosed = true
	e.rq.wake()
	return nil
}

// CloseWrite shuts down the writing side: a FIN follows the queued data.
func (c *TCPConn) CloseWrite() error {
	e := c.e
	e.sh.mu.Lock()
	defer e.sh.mu.Unlock()
	if e.closed {
		return c.opErr("close", net.ErrClosed)
	}
	e.deferSyn = false
	err := e.tc.CloseWrite()
	e.updateLocked(time.Now())
	if err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// LocalAddr returns the local address (*net.TCPAddr, a fresh value per call:
// the connection keeps only the tuple, to stay small while idle).
func (c *TCPConn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.e.tuple.Local) }

// RemoteAddr returns the remote address (*net.TCPAddr).
func (c *TCPConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.e.tuple.Remote) }

// SetDeadline sets the read and write deadlines.
func (c *TCPConn) SetDeadline(t time.Time) error {
	if err := c.checkOpen("set"); err != nil {
		return err
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the deadline for Read; zero means none.
func (c *TCPConn) SetReadDeadline(t time.Time) error {
	if err := c.checkOpen("set"); err != nil {
		return err
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for Write; zero means none.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	if err := c.checkOpen("set"); err != nil {
		return err
	}
	c.wd.set(t)
	return nil
}

func (c *TCPConn) checkOpen(op string) error {
	e := c.e
	e.sh.mu.Lock()
	defer e.sh.mu.Unlock()
	if e.closed {
		return c.opErr(op, net.ErrClosed)
	}
	return nil
}

// withConn runs f on the engine connection under its lock, then lets the
// engine send what the change requires.
func (c *TCPConn) withConn(f func(tc *tcp.Conn)) error {
	e := c.e
	e.sh.mu.Lock()
	defer e.sh.mu.Unlock()
	if e.closed {
		return c.opErr("set", net.ErrClosed)
	}
	f(e.tc)
	if !e.removed.Load() {
		e.updateLocked(time.Now())
	}
	return nil
}

// SetKeepAlive turns keepalive probes on or off (SO_KEEPALIVE).
func (c *TCPConn) SetKeepAlive(on bool) error {
	return c.withConn(func(tc *tcp.Conn) { tc.SetKeepAlive(on) })
}

// SetKeepAlivePeriod sets the idle time and the probe interval, like
// *net.TCPConn.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	if d < time.Second {
		d = time.Second
	}
	return c.withConn(func(tc *tcp.Conn) { tc.SetKeepAliveParams(d, d, 0) })
}

// SetKeepAliveConfig configures keepalive like *net.TCPConn: zero Idle or
// Interval mean 15 s and zero Count means 9; negative values keep the
// current setting (initially the sysctls).
func (c *TCPConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	idle, intvl, cnt := cfg.Idle, cfg.Interval, cfg.Count
	if idle == 0 {
		idle = 15 * time.Second
	}
	if intvl == 0 {
		intvl = 15 * time.Second
	}
	if cnt == 0 {
		cnt = 9
	}
	return c.withConn(func(tc *tcp.Conn) {
		tc.SetKeepAlive(cfg.Enable)
		tc.SetKeepAliveParams(max(idle, 0), max(intvl, 0), max(cnt, 0))
	})
}

// SetLinger sets SO_LINGER: sec == 0 makes Close reset the connection;
// sec < 0 (default) closes gracefully in the background. A positive value
// behaves like the default (Close does not block).
func (c *TCPConn) SetLinger(sec int) error {
	if err := c.checkOpen("set"); err != nil {
		return err
	}
	c.mu.Lock()
	c.linger = sec
	c.mu.Unlock()
	return nil
}

// SetNoDelay turns Nagle's algorithm off (true) or on (TCP_NODELAY).
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	return c.withConn(func(tc *tcp.Conn) { tc.SetNoDelay(noDelay) })
}

// SetReadBuffer sets the receive buffer size (SO_RCVBUF).
func (c *TCPConn) SetReadBuffer(bytes int) error {
	if bytes < 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	return c.withConn(func(tc *tcp.Conn) { tc.SetReadBuffer(bytes) })
}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF).
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	if bytes < 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	return c.withConn(func(tc *tcp.Conn) { tc.SetWriteBuffer(bytes) })
}

// SetUserTimeout sets TCP_USER_TIMEOUT (0 = off).
func (c *TCPConn) SetUserTimeout(d time.Duration) error {
	return c.withConn(func(tc *tcp.Conn) { tc.SetUserTimeout(d) })
}

// Info returns a tcp_info-like snapshot of the connection.
func (c *TCPConn) Info() tcp.Info {
	e := c.e
	e.sh.mu.Lock()
	defer e.sh.mu.Unlock()
	return e.tc.Info()
}

// State returns the connection's TCP state.
func (c *TCPConn) State() tcp.State {
	e := c.e
	e.sh.mu.Lock()
	defer e.sh.mu.Unlock()
	return e.tc.State()
}

// ReadFrom copies from r until EOF (io.ReaderFrom).
func (c *TCPConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(writerOnly{c}, r)
}

// WriteTo copies to w until EOF (io.WriterTo).
func (c *TCPConn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, readerOnly{c})
}

type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// errNoFD is returned by the methods that need an operating-system socket.
var errNoFD = errors.New("ustack: connection has no operating-system socket")

// SyscallConn is not supported: ustack connections are not kernel sockets.
func (c *TCPConn) SyscallConn() (syscall.RawConn, error) {
	return nil, c.opErr("raw-control", errNoFD)
}

// File is not supported: ustack connections are not kernel sockets.
func (c *TCPConn) File() (*os.File, error) {
	return nil, c.opErr("file", errNoFD)
}

// MultipathTCP reports false: ustack does not implement MPTCP.
func (c *TCPConn) MultipathTCP() (bool, error) { return false, nil }
