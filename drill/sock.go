package drill

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"syscall"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/tcp/cc"
)

// socket emulates a file descriptor of the system under test.
type socket struct {
	fd        int
	listening bool
	backlog   int
	nonblock  bool
	local     netip.AddrPort
	bound     bool
	f         *flow
	connState int // 0 none, 1 connecting, 2 connected (connect returned 0)
	acceptQ   []*flow
	children  []*flow
	soError   syscall.Errno
	shutRd    bool

	// socket options (applied to the connection, inherited by children)
	set          map[int64]bool // which options were set (by optname key)
	noDelay      bool
	keepAlive    bool
	keepIdle     time.Duration
	keepIntvl    time.Duration
	keepCnt      int
	userTimeout  time.Duration
	sndBuf       int
	rcvBuf       int
	lingerOn     bool
	linger       int
	cong         string
	fastOpenQlen int
	userMSS      int             // TCP_MAXSEG (0 = none)
	notsentLowat int64           // TCP_NOTSENT_LOWAT (0 = the sysctl)
	reuse        map[int64]int64 // SO_REUSEADDR/SO_REUSEPORT values
}

// Linux constants scripts use.
var constants = map[string]int64{
	"AF_INET": 2, "AF_INET6": 10, "AF_UNSPEC": 0, "PF_INET": 2, "PF_INET6": 10,
	"SOCK_STREAM": 1, "IPPROTO_TCP": 6, "IPPROTO_IP": 0, "SOL_SOCKET": 1, "SOL_TCP": 6,
	"SO_REUSEADDR": 2, "SO_ERROR": 4, "SO_SNDBUF": 7, "SO_RCVBUF": 8, "SO_KEEPALIVE": 9,
	"SO_LINGER": 13, "SO_REUSEPORT": 15,
	"TCP_NODELAY": 1, "TCP_MAXSEG": 2, "TCP_CORK": 3, "TCP_KEEPIDLE": 4, "TCP_KEEPINTVL": 5,
	"TCP_KEEPCNT": 6, "TCP_INFO": 11, "TCP_CONGESTION": 13, "TCP_USER_TIMEOUT": 18,
	"TCP_FASTOPEN": 23, "TCP_FASTOPEN_CONNECT": 30, "TCP_NOTSENT_LOWAT": 25,
	"F_GETFL": 3, "F_SETFL": 4, "O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2, "O_NONBLOCK": 0x800,
	"SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2,
	"MSG_PEEK": 2, "MSG_DONTWAIT": 0x40, "MSG_NOSIGNAL": 0x4000, "MSG_FASTOPEN": 0x20000000,
	"POLLIN": 1, "POLLPRI": 2, "POLLOUT": 4, "POLLERR": 8, "POLLHUP": 0x10, "POLLNVAL": 0x20,
	"POLLRDNORM": 0x40, "POLLWRNORM": 0x100, "POLLRDHUP": 0x2000,
	"NULL": 0,
}

var errnos = map[string]syscall.Errno{
	"EINPROGRESS": syscall.EINPROGRESS, "EAGAIN": syscall.EAGAIN, "EWOULDBLOCK": syscall.EAGAIN,
	"ECONNREFUSED": syscall.ECONNREFUSED, "ECONNRESET": syscall.ECONNRESET, "ETIMEDOUT": syscall.ETIMEDOUT,
	"EPIPE": syscall.EPIPE, "ENOTCONN": syscall.ENOTCONN, "EISCONN": syscall.EISCONN,
	"EALREADY": syscall.EALREADY, "EBADF": syscall.EBADF, "EINVAL": syscall.EINVAL,
	"ENOPROTOOPT": syscall.ENOPROTOOPT, "EADDRINUSE": syscall.EADDRINUSE, "ENOENT": syscall.ENOENT,
	"EOPNOTSUPP": syscall.EOPNOTSUPP, "ENOTSOCK": syscall.ENOTSOCK, "EHOSTUNREACH": syscall.EHOSTUNREACH,
}

func errnoName(e syscall.Errno) string {
	best := ""
	for n, v := range errnos {
		if v == e && (best == "" || n < best) {
			best = n
		}
	}
	if best == "" {
		return fmt.Sprintf("errno %d", int(e))
	}
	return best
}

// toErrno maps an engine error to an errno.
func toErrno(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// sysResult is what a system call returned.
type sysResult struct {
	ret   int64
	errno syscall.Errno
	err   error // a mismatch found in output arguments
}

// pendingCall is a system call that has started and not yet returned.
type pendingCall struct {
	ev    *Event
	start time.Duration
	end   time.Duration
	limAt time.Time
	wake  time.Time // extra wake-up (poll timeout)
	try   func() (sysResult, bool)
}

func (p *pendingCall) limit() time.Time { return p.limAt }

func (r *runner) retryPending() {
	for i := 0; i < len(r.pending) && r.err == nil; i++ {
		p := r.pending[i]
		res, done := p.try()
		if !done {
			if !r.now.Before(p.limAt) {
				r.err = &Error{Line: p.ev.Line, Msg: fmt.Sprintf("%s call expected to return at %s, still blocked at %s", p.ev.Syscall.Name, fmtT(p.end), fmtT(r.elapsed()))}
			}
			continue
		}
		r.pending = append(r.pending[:i], r.pending[i+1:]...)
		i--
		r.finishPending(p, res)
	}
}

func (r *runner) finishPending(p *pendingCall, res sysResult) {
	at := r.elapsed()
	if at < p.end-r.tol || at > p.end+r.tol {
		r.err = &Error{Line: p.ev.Line, Msg: fmt.Sprintf("%s call expected to return at %s, returned at %s", p.ev.Syscall.Name, fmtT(p.end), fmtT(at))}
		return
	}
	r.err = r.checkResult(p.ev, res)
}

func (r *runner) checkResult(ev *Event, res sysResult) error {
	sc := ev.Syscall
	got := fmt.Sprint(res.ret)
	if res.ret == -1 {
		got += " " + errnoName(res.errno)
	}
	r.logf("%s(...) = %s", sc.Name, got)
	if res.err != nil {
		return r.failf(ev, "%s: %v", sc.Name, res.err)
	}
	if sc.Result.Kind == XEllipsis {
		return nil
	}
	want, err := r.intVal(sc.Result)
	if err != nil {
		return r.failf(ev, "result: %v", err)
	}
	wantS := fmt.Sprint(want)
	if sc.Errno != "" {
		wantS += " " + sc.Errno
	}
	if want != res.ret {
		return r.failf(ev, "%s returned %s, expected %s", sc.Name, got, wantS)
	}
	if res.ret == -1 {
		e, ok := errnos[sc.Errno]
		if sc.Errno == "" || !ok || e != res.errno {
			if sc.Errno != "" && !ok {
				return r.failf(ev, "unsupported errno name %s", sc.Errno)
			}
			return r.failf(ev, "%s returned %s, expected %s", sc.Name, got, wantS)
		}
	}
	return nil
}

// intVal evaluates an integer argument: numbers, constants, a|b, [n].
func (r *runner) intVal(e Expr) (int64, error) {
	switch e.Kind {
	case XInt:
		return e.Int, nil
	case XIdent:
		if v, ok := constants[e.Name]; ok {
			return v, nil
		}
		if v, ok := errnos[e.Name]; ok {
			return int64(v), nil
		}
		return 0, fmt.Errorf("unknown constant %s", e.Name)
	case XOr:
		var v int64
		for _, x := range e.Elems {
			w, err := r.intVal(x)
			if err != nil {
				return 0, err
			}
			v |= w
		}
		return v, nil
	case XList:
		if len(e.Elems) == 1 {
			return r.intVal(e.Elems[0])
		}
	}
	return 0, fmt.Errorf("expected an integer, found %v", e)
}

func (r *runner) fdArg(ev *Event, i int) (*socket, error) {
	sc := ev.Syscall
	if i >= len(sc.Args) {
		return nil, r.failf(ev, "%s: missing argument %d", sc.Name, i+1)
	}
	fd, err := r.intVal(sc.Args[i])
	if err != nil {
		return nil, r.failf(ev, "%s: %v", sc.Name, err)
	}
	s := r.fds[int(fd)]
	if s == nil {
		return nil, r.failf(ev, "%s: fd %d is not an open socket", sc.Name, fd)
	}
	return s, nil
}

// sockArgs checks the argument count (one of n) and resolves the
// socket in the first argument.
func (r *runner) sockArgs(ev *Event, n ...int) (*socket, error) {
	if err := r.nargs(ev, n...); err != nil {
		return nil, err
	}
	return r.fdArg(ev, 0)
}

func (r *runner) nargs(ev *Event, n ...int) error {
	got := len(ev.Syscall.Args)
	for _, k := range n {
		if got == k {
			return nil
		}
	}
	return r.failf(ev, "%s: %d arguments, expected %v", ev.Syscall.Name, got, n)
}

func done(ret int64) (sysResult, bool)       { return sysResult{ret: ret}, true }
func fail(e syscall.Errno) (sysResult, bool) { return sysResult{ret: -1, errno: e}, true }
func immediate(res sysResult) func() (sysResult, bool) {
	return func() (sysResult, bool) { return res, true }
}

// syscall starts a system call line.
func (r *runner) syscall(ev *Event, t time.Duration) error {
	sc := ev.Syscall
	var try func() (sysResult, bool)
	var err error
	r.pollWake = time.Time{}
	switch sc.Name {
	case "socket":
		try, err = r.sysSocket(ev)
	case "bind":
		try, err = r.sysBind(ev)
	case "listen":
		try, err = r.sysListen(ev)
	case "accept":
		try, err = r.sysAccept(ev)
	case "connect":
		try, err = r.sysConnect(ev)
	case "write", "send":
		try, err = r.sysWrite(ev)
	case "sendto":
		try, err = r.sysSendto(ev)
	case "read", "recv":
		try, err = r.sysRead(ev)
	case "shutdown":
		try, err = r.sysShutdown(ev)
	case "close":
		try, err = r.sysClose(ev)
	case "setsockopt":
		try, err = r.sysSetsockopt(ev)
	case "getsockopt":
		try, err = r.sysGetsockopt(ev)
	case "fcntl":
		try, err = r.sysFcntl(ev)
	case "poll":
		try, err = r.sysPoll(ev)
	default:
		return r.failf(ev, "unsupported system call %s", sc.Name)
	}
	if err != nil {
		return err
	}
	end := t
	if ev.Time.Blocking {
		// Like packetdrill: after a relative start the end is relative
		// to the same base (the previous event), e.g. +0...0.100 blocks
		// for 100 ms; "+" after the dots is relative to the start.
		end = ev.Time.End
		switch {
		case ev.Time.EndRel:
			end = t + ev.Time.End
		case ev.Time.Kind == TimeRelative:
			end = t - ev.Time.T + ev.Time.End
		}
	}
	r.flush()
	if r.err != nil {
		return r.err
	}
	res, ok := try()
	if ok {
		at := r.elapsed()
		if at < end-r.tol {
			return r.failf(ev, "%s returned at %s, expected to block until %s", sc.Name, fmtT(at), fmtT(end))
		}
		r.flush()
		return r.checkResult(ev, res)
	}
	p := &pendingCall{ev: ev, start: t, end: end, limAt: epoch.Add(end + r.tol), try: try}
	p.wake, r.pollWake = r.pollWake, time.Time{}
	r.pending = append(r.pending, p)
	return nil
}

func (r *runner) sysSocket(ev *Event) (func() (sysResult, bool), error) {
	if err := r.nargs(ev, 3); err != nil {
		return nil, err
	}
	sc := ev.Syscall
	if sc.Args[1].Kind != XEllipsis {
		if v, err := r.intVal(sc.Args[1]); err != nil || v&0xf != constants["SOCK_STREAM"] {
			return nil, r.failf(ev, "socket: only SOCK_STREAM sockets are supported")
		}
	}
	fd := 3
	for r.fds[fd] != nil {
		fd++
	}
	s := &socket{fd: fd, set: map[int64]bool{}}
	if v, err := r.intVal(sc.Args[1]); err == nil && v&0x800 != 0 {
		s.nonblock = true // SOCK_NONBLOCK
	}
	r.fds[fd] = s
	return immediate(sysResult{ret: int64(fd)}), nil
}

func (r *runner) sysBind(ev *Event) (func() (sysResult, bool), error) {
	s, err := r.sockArgs(ev, 3)
	if err != nil {
		return nil, err
	}
	if s.bound {
		return immediate(sysResult{ret: -1, errno: syscall.EINVAL}), nil
	}
	s.local = netip.AddrPortFrom(r.local, ListenPort)
	s.bound = true
	return immediate(sysResult{}), nil
}

func (r *runner) sysListen(ev *Event) (func() (sysResult, bool), error) {
	s, err := r.sockArgs(ev, 2)
	if err != nil {
		return nil, err
	}
	b, err := r.intVal(ev.Syscall.Args[1])
	if err != nil {
		return nil, r.failf(ev, "listen: %v", err)
	}
	if s.f != nil {
		return immediate(sysResult{ret: -1, errno: syscall.EINVAL}), nil
	}
	if !s.bound {
		s.local = netip.AddrPortFrom(r.local, ListenPort)
		s.bound = true
	}
	s.listening = true
	s.backlog = int(min(max(b, 0), int64(r.cfg.Somaxconn)))
	return immediate(sysResult{}), nil
}

func (r *runner) sysAccept(ev *Event) (func() (sysResult, bool), error) {
	s, err := r.sockArgs(ev, 3)
	if err != nil {
		return nil, err
	}
	if !s.listening {
		return immediate(sysResult{ret: -1, errno: syscall.EINVAL}), nil
	}
	return func() (sysResult, bool) {
		if len(s.acceptQ) == 0 {
			if s.nonblock {
				return fail(syscall.EAGAIN)
			}
			return sysResult{}, false
		}
		f := s.acceptQ[0]
		s.acceptQ = s.acceptQ[1:]
		for i, c := range s.children {
			if c == f {
				s.children = append(s.children[:i], s.children[i+1:]...)
				break
			}
		}
		f.listener = nil
		fd := 3
		for r.fds[fd] != nil {
			fd++
		}
		ns := &socket{fd: fd, f: f, connState: 2, local: f.t.Local, bound: true, set: map[int64]bool{}}
		ns.copyOptions(s)
		f.sock = ns
		r.fds[fd] = ns
		r.cur = f
		return done(int64(fd))
	}, nil
}

func (s *socket) copyOptions(from *socket) {
	set := s.set
	*s = socket{fd: s.fd, f: s.f, connState: s.connState, local: s.local, bound: s.bound, nonblock: s.nonblock,
		noDelay: from.noDelay, keepAlive: from.keepAlive, keepIdle: from.keepIdle, keepIntvl: from.keepIntvl,
		keepCnt: from.keepCnt, userTimeout: from.userTimeout, sndBuf: from.sndBuf, rcvBuf: from.rcvBuf,
		lingerOn: from.lingerOn, linger: from.linger, cong: from.cong, userMSS: from.userMSS, notsentLowat: from.notsentLowat}
	for k, v := range from.set {
		set[k] = v
	}
	s.set = set
}

func (s *socket) dropChild(f *flow) {
	for i, c := range s.children {
		if c == f {
			s.children = append(s.children[:i], s.children[i+1:]...)
			return
		}
	}
}

func (s *socket) connConfig(base tcp.Config) *tcp.Config {
	c := base
	if s.cong != "" {
		c.CongestionControl = s.cong
	}
	if s.notsentLowat > 0 {
		c.NotsentLowat = s.notsentLowat
	}
	return &c
}

// option keys for socket.set
const (
	kNoDelay = iota + 1
	kKeepAlive
	kKeepParams
	kUserTimeout
	kSndBuf
	kRcvBuf
)

// applyAll applies the options set on the socket to a new connection.
func (s *socket) applyAll(c *tcp.Conn) {
	if s.userMSS > 0 {
		// TCP_MAXSEG clamps the MSS we advertise and use
		hdr := 40
		if c.Tuple().Remote.Addr().Is6() {
			hdr = 60
		}
		c.SetMTU(s.userMSS + hdr)
	}
	for _, k := range []int64{kNoDelay, kKeepParams, kKeepAlive, kUserTimeout, kSndBuf, kRcvBuf} {
		if s.set[k] {
			s.apply(c, k)
		}
	}
}

func (s *socket) apply(c *tcp.Conn, k int64) {
	switch k {
	case kNoDelay:
		c.SetNoDelay(s.noDelay)
	case kKeepAlive:
		c.SetKeepAlive(s.keepAlive)
	case kKeepParams:
		c.SetKeepAliveParams(s.keepIdle, s.keepIntvl, s.keepCnt)
	case kUserTimeout:
		c.SetUserTimeout(s.userTimeout)
	case kSndBuf:
		c.SetWriteBuffer(s.sndBuf)
	case kRcvBuf:
		c.SetReadBuffer(s.rcvBuf)
	}
}

// activeOpen creates the connection for connect/sendto.
func (r *runner) activeOpen(s *socket, fastOpen bool) {
	port := s.local.Port()
	if !s.bound {
		port = r.nextPort
		r.nextPort++
	}
	t := tcp.Tuple{Local: netip.AddrPortFrom(r.local, port), Remote: netip.AddrPortFrom(r.peer, ListenPort)}
	iss := tcp.ISN(&r.key, t, r.now)
	c := tcp.NewActive(s.connConfig(r.cfg), t, iss, r.now)
	if fastOpen {
		c.SetFastOpenCookie(nil)
	}
	s.applyAll(c)
	f := &flow{t: t, c: c, sock: s}
	s.f = f
	s.local = t.Local
	s.connState = 1
	r.addFlow(f)
	r.cur = f
}

func (r *runner) connectResult(s *socket) (sysResult, bool) {
	c := s.f.c
	switch c.State() {
	case tcp.SynSent, tcp.SynReceived:
		return sysResult{}, false
	case tcp.Closed:
		if err := c.Err(); err != nil {
			s.connState = 0
			return fail(toErrno(err))
		}
	}
	s.connState = 2
	return done(0)
}

func (r *runner) sysConnect(ev *Event) (func() (sysResult, bool), error) {
	s, err := r.sockArgs(ev, 3)
	if err != nil {
		return nil, err
	}
	if s.listening {
		return immediate(sysResult{ret: -1, errno: syscall.EISCONN}), nil
	}
	switch {
	case s.f == nil || (s.connState == 0 && s.f.c.State() == tcp.Closed):
		r.activeOpen(s, false)
		if s.nonblock {
			return immediate(sysResult{ret: -1, errno: syscall.EINPROGRESS}), nil
		}
	case s.connState == 2:
		return immediate(sysResult{ret: -1, errno: syscall.EISCONN}), nil
	case s.nonblock:
		// a later connect on a non-blocking socket reports progress
		return func() (sysResult, bool) {
			res, ok := r.connectResult(s)
			if !ok {
				return fail(syscall.EALREADY)
			}
			return res, true
		}, nil
	}
	return func() (sysResult, bool) { return r.connectResult(s) }, nil
}

// lenArg returns a length argument.
func (r *runner) lenArg(ev *Event, i int) (int, error) {
	v, err := r.intVal(ev.Syscall.Args[i])
	if err != nil || v < 0 || v > 1<<24 {
		return 0, r.failf(ev, "%s: bad length %v", ev.Syscall.Name, ev.Syscall.Args[i])
	}
	return int(v), nil
}

// ioArgs resolves the arguments of write, send, sendto, read and recv:
// the socket, the length (third argument) and the MSG_* flags (fourth
// argument, 0 without one). n lists the argument counts allowed.
func (r *runner) ioArgs(ev *Event, n ...int) (s *socket, length int, flags int64, err error) {
	if s, err = r.sockArgs(ev, n...); err != nil {
		return nil, 0, 0, err
	}
	if length, err = r.lenArg(ev, 2); err != nil {
		return nil, 0, 0, err
	}
	if len(ev.Syscall.Args) > 3 {
		if flags, err = r.intVal(ev.Syscall.Args[3]); err != nil {
			return nil, 0, 0, r.failf(ev, "%s flags: %v", ev.Syscall.Name, err)
		}
	}
	return s, length, flags, nil
}

// wouldBlock is the result of a call that cannot complete yet: EAGAIN
// when non-blocking, else keep waiting.
func wouldBlock(nonblock bool) (sysResult, bool) {
	if nonblock {
		return fail(syscall.EAGAIN)
	}
	return sysResult{}, false
}

// handshaking reports whether c has not completed its handshake yet.
func handshaking(c *tcp.Conn) bool {
	st := c.State()
	return st == tcp.SynSent || st == tcp.SynReceived
}

func (r *runner) sysWrite(ev *Event) (func() (sysResult, bool), error) {
	s, n, fl, err := r.ioArgs(ev, 3, 4)
	if err != nil {
		return nil, err
	}
	return r.writer(s, n, s.nonblock || fl&constants["MSG_DONTWAIT"] != 0), nil
}

func (r *runner) writer(s *socket, n int, nonblock bool) func() (sysResult, bool) {
	data := make([]byte, n)
	written := 0
	return func() (sysResult, bool) {
		if s.f == nil {
			return fail(syscall.EPIPE)
		}
		c := s.f.c
		if handshaking(c) {
			return wouldBlock(nonblock)
		}
		for written < n {
			k, err := c.Send(data[written:])
			if err != nil {
				if written > 0 {
					return done(int64(written))
				}
				return fail(toErrno(err))
			}
			if k == 0 {
				break
			}
			written += k
			c.Output(r.now, func(seg *tcp.Segment) { r.transmit(s.f, seg) })
		}
		if written == n || (nonblock && written > 0) {
			return done(int64(written))
		}
		return wouldBlock(nonblock)
	}
}

func (r *runner) sysSendto(ev *Event) (func() (sysResult, bool), error) {
	s, n, fl, err := r.ioArgs(ev, 6)
	if err != nil {
		return nil, err
	}
	if fl&constants["MSG_FASTOPEN"] == 0 || s.f != nil {
		return r.writer(s, n, s.nonblock || fl&constants["MSG_DONTWAIT"] != 0), nil
	}
	if r.cfg.FastOpen&tcp.FastOpenClient == 0 {
		r.activeOpen(s, false)
	} else {
		if ck := r.cookies[r.peer]; len(ck) > 0 || r.cfg.FastOpen&tcp.FastOpenClientNoCookie != 0 {
			return nil, r.failf(ev, "sendto MSG_FASTOPEN with a cached cookie: unsupported (the engine does not send data in the SYN yet)")
		}
		r.activeOpen(s, true)
	}
	if s.nonblock {
		return immediate(sysResult{ret: -1, errno: syscall.EINPROGRESS}), nil
	}
	w := r.writer(s, n, false)
	return func() (sysResult, bool) {
		res, ok := r.connectResult(s)
		if !ok || res.ret != 0 {
			return res, ok
		}
		return w()
	}, nil
}

func (r *runner) sysRead(ev *Event) (func() (sysResult, bool), error) {
	s, n, fl, err := r.ioArgs(ev, 3, 4)
	if err != nil {
		return nil, err
	}
	nonblock := s.nonblock || fl&constants["MSG_DONTWAIT"] != 0
	if fl&constants["MSG_PEEK"] != 0 {
		return nil, r.failf(ev, "%s: MSG_PEEK is unsupported", ev.Syscall.Name)
	}
	buf := make([]byte, n)
	return func() (sysResult, bool) {
		if s.f == nil {
			return fail(syscall.ENOTCONN)
		}
		c := s.f.c
		if s.shutRd && c.Readable() == 0 {
			return done(0) // shut down for reading: EOF instead of blocking
		}
		if handshaking(c) {
			return wouldBlock(nonblock)
		}
		k, err := c.Recv(buf)
		c.Output(r.now, func(seg *tcp.Segment) { r.transmit(s.f, seg) })
		switch {
		case k > 0:
			return done(int64(k))
		case err == io.EOF:
			return done(0)
		case err != nil:
			return fail(toErrno(err))
		case n == 0:
			return done(0)
		}
		return wouldBlock(nonblock)
	}, nil
}

func (r *runner) sysShutdown(ev *Event) (func() (sysResult, bool), error) {
	s, err := r.sockArgs(ev, 2)
	if err != nil {
		return nil, err
	}
	how, err := r.intVal(ev.Syscall.Args[1])
	if err != nil || how < 0 || how > 2 {
		return nil, r.failf(ev, "shutdown: bad how %v", ev.Syscall.Args[1])
	}
	if s.f == nil {
		return immediate(sysResult{ret: -1, errno: syscall.ENOTCONN}), nil
	}
	if how == 0 || how == 2 {
		s.shutRd = true
	}
	if how == 1 || how == 2 {
		if err := s.f.c.CloseWrite(); err != nil {
			return immediate(sysResult{ret: -1, errno: toErrno(err)}), nil
		}
	}
	return immediate(sysResult{}), nil
}

func (r *runner) sysClose(ev *Event) (func() (sysResult, bool), error) {
	s, err := r.sockArgs(ev, 1)
	if err != nil {
		return nil, err
	}
	delete(r.fds, s.fd)
	if s.listening {
		for _, f := range s.children {
			if f.c != nil {
				f.c.Abort()
			}
			f.listener = nil
		}
		s.children, s.acceptQ = nil, nil
	}
	if s.f != nil {
		if s.lingerOn && s.linger == 0 {
			s.f.c.Abort()
		} else {
			_ = s.f.c.Close()
		}
	}
	return immediate(sysResult{}), nil
}

// optName resolves level and option name arguments.
func (r *runner) optName(ev *Event) (level, name int64, err error) {
	sc := ev.Syscall
	if level, err = r.intVal(sc.Args[1]); err != nil {
		return 0, 0, r.failf(ev, "%s level: %v", sc.Name, err)
	}
	if name, err = r.intVal(sc.Args[2]); err != nil {
		return 0, 0, r.failf(ev, "%s option: %v", sc.Name, err)
	}
	return level, name, nil
}

func (r *runner) sysSetsockopt(ev *Event) (func() (sysResult, bool), error) {
	s, err := r.sockArgs(ev, 5)
	if err != nil {
		return nil, err
	}
	level, name, err := r.optName(ev)
	if err != nil {
		return nil, err
	}
	val := ev.Syscall.Args[3]
	ival := func() (int64, error) {
		v, err := r.intVal(val)
		if err != nil {
			return 0, r.failf(ev, "setsockopt value: %v", err)
		}
		return v, nil
	}
	var key int64
	ok := immediate(sysResult{})
	sol, tcpl := constants["SOL_SOCKET"], constants["SOL_TCP"]
	switch {
	case level == sol && (name == constants["SO_REUSEADDR"] || name == constants["SO_REUSEPORT"]):
		if _, err := ival(); err != nil {
			return nil, err
		}
		return ok, nil
	case level == sol && name == constants["SO_KEEPALIVE"]:
		v, err := ival()
		if err != nil {
			return nil, err
		}
		s.keepAlive, key = v != 0, kKeepAlive
	case level == sol && name == constants["SO_SNDBUF"]:
		v, err := ival()
		if err != nil {
			return nil, err
		}
		s.sndBuf, key = int(v), kSndBuf
	case level == sol && name == constants["SO_RCVBUF"]:
		v, err := ival()
		if err != nil {
			return nil, err
		}
		s.rcvBuf, key = int(v), kRcvBuf
	case level == sol && name == constants["SO_LINGER"]:
		if val.Kind != XStruct || len(val.Elems) != 2 {
			return nil, r.failf(ev, "SO_LINGER value must be {onoff=N, linger=N}")
		}
		on, err1 := r.intVal(val.Elems[0])
		l, err2 := r.intVal(val.Elems[1])
		if err1 != nil || err2 != nil {
			return nil, r.failf(ev, "SO_LINGER value must be {onoff=N, linger=N}")
		}
		s.lingerOn, s.linger = on != 0, int(l)
		if s.lingerOn && s.linger != 0 {
			return nil, r.failf(ev, "SO_LINGER with a non-zero timeout is unsupported (close does not block)")
		}
		return ok, nil
	case level == tcpl && name == constants["TCP_NODELAY"]:
		v, err := ival()
		if err != nil {
			return nil, err
		}
		s.noDelay, key = v != 0, kNoDelay
	case level == tcpl && (name == constants["TCP_KEEPIDLE"] || name == constants["TCP_KEEPINTVL"] || name == constants["TCP_KEEPCNT"]):
		v, err := ival()
		if err != nil {
			return nil, err
		}
		if v < 1 {
			return immediate(sysResult{ret: -1, errno: syscall.EINVAL}), nil
		}
		switch name {
		case constants["TCP_KEEPIDLE"]:
			s.keepIdle = time.Duration(v) * time.Second
		case constants["TCP_KEEPINTVL"]:
			s.keepIntvl = time.Duration(v) * time.Second
		default:
			s.keepCnt = int(v)
		}
		key = kKeepParams
	case level == tcpl && name == constants["TCP_USER_TIMEOUT"]:
		v, err := ival()
		if err != nil {
			return nil, err
		}
		if v < 0 {
			return immediate(sysResult{ret: -1, errno: syscall.EINVAL}), nil
		}
		s.userTimeout, key = time.Duration(v)*time.Millisecond, kUserTimeout
	case level == tcpl && name == constants["TCP_CONGESTION"]:
		if val.Kind != XString {
			return nil, r.failf(ev, "TCP_CONGESTION value must be a string")
		}
		if _, err := cc.New(val.Str); err != nil {
			return immediate(sysResult{ret: -1, errno: syscall.ENOENT}), nil
		}
		if s.f != nil {
			return nil, r.failf(ev, "TCP_CONGESTION on a connected socket is unsupported")
		}
		s.cong = val.Str
		return ok, nil
	case level == tcpl && name == constants["TCP_FASTOPEN"]:
		v, err := ival()
		if err != nil {
			return nil, err
		}
		s.fastOpenQlen = int(v)
		return ok, nil
	case level == tcpl && name == constants["TCP_MAXSEG"]:
		v, err := ival()
		if err != nil {
			return nil, err
		}
		if v < 88 || v > 65495 {
			return immediate(sysResult{ret: -1, errno: syscall.EINVAL}), nil
		}
		if s.f != nil {
			return nil, r.failf(ev, "TCP_MAXSEG on a connected socket is unsupported")
		}
		s.userMSS = int(v)
		return ok, nil
	case level == tcpl && name == constants["TCP_NOTSENT_LOWAT"]:
		v, err := ival()
		if err != nil {
			return nil, err
		}
		if s.f != nil {
			return nil, r.failf(ev, "TCP_NOTSENT_LOWAT on a connected socket is unsupported (the engine reads it from its Config)")
		}
		s.notsentLowat = v
		return ok, nil
	case level == tcpl && name == constants["TCP_FASTOPEN_CONNECT"]:
		return nil, r.failf(ev, "TCP_FASTOPEN_CONNECT is unsupported (the engine does not send data in the SYN yet)")
	default:
		return nil, r.failf(ev, "unsupported socket option %v/%v", ev.Syscall.Args[1], ev.Syscall.Args[2])
	}
	s.set[key] = true
	if s.f != nil && s.f.c != nil {
		s.apply(s.f.c, key)
	}
	return ok, nil
}

func (r *runner) sysGetsockopt(ev *Event) (func() (sysResult, bool), error) {
	s, err := r.sockArgs(ev, 5)
	if err != nil {
		return nil, err
	}
	level, name, err := r.optName(ev)
	if err != nil {
		return nil, err
	}
	sol, tcpl := constants["SOL_SOCKET"], constants["SOL_TCP"]
	var got int64
	var gotS string
	isStr := false
	switch {
	case level == sol && name == constants["SO_ERROR"]:
		if s.f != nil && s.f.c.State() == tcp.Closed && s.f.c.Err() != nil && s.connState == 1 {
			got = int64(toErrno(s.f.c.Err()))
			s.connState = 0
		}
	case level == sol && name == constants["SO_KEEPALIVE"]:
		got = int64(b2i(s.keepAlive))
	case level == sol && name == constants["SO_SNDBUF"]:
		// like Linux: the doubled request, or tcp_wmem[1] by default
		got = int64(r.cfg.WMem[1])
		if s.set[kSndBuf] {
			got = int64(max(min(s.sndBuf, r.cfg.WMemMax)*2, 4608))
		}
	case level == sol && name == constants["SO_RCVBUF"]:
		got = int64(r.cfg.RMem[1])
		if s.set[kRcvBuf] {
			got = int64(max(min(s.rcvBuf, r.cfg.RMemMax)*2, 2304))
		}
	case level == tcpl && name == constants["TCP_NODELAY"]:
		got = int64(b2i(s.noDelay))
	case level == tcpl && name == constants["TCP_USER_TIMEOUT"]:
		got = s.userTimeout.Milliseconds()
	case level == tcpl && name == constants["TCP_KEEPIDLE"]:
		got = int64(r.cfg.KeepaliveTime / time.Second)
		if s.keepIdle > 0 {
			got = int64(s.keepIdle / time.Second)
		}
	case level == tcpl && name == constants["TCP_KEEPINTVL"]:
		got = int64(r.cfg.KeepaliveIntvl / time.Second)
		if s.keepIntvl > 0 {
			got = int64(s.keepIntvl / time.Second)
		}
	case level == tcpl && name == constants["TCP_KEEPCNT"]:
		got = int64(r.cfg.KeepaliveProbes)
		if s.keepCnt > 0 {
			got = int64(s.keepCnt)
		}
	case level == tcpl && name == constants["TCP_MAXSEG"]:
		got = 536
		if s.userMSS > 0 {
			got = int64(s.userMSS)
		}
		if s.f != nil && s.f.c.State() != tcp.SynSent {
			got = int64(s.f.c.Info().SndMSS)
		}
	case level == tcpl && name == constants["TCP_NOTSENT_LOWAT"]:
		got = s.notsentLowat // 0: not set on the socket (the sysctl applies)
	case level == tcpl && name == constants["TCP_CONGESTION"]:
		isStr = true
		gotS = r.cfg.CongestionControl
		if s.cong != "" {
			gotS = s.cong
		}
	default:
		return nil, r.failf(ev, "unsupported socket option %v/%v for getsockopt", ev.Syscall.Args[1], ev.Syscall.Args[2])
	}
	res := sysResult{}
	want := ev.Syscall.Args[3]
	switch {
	case want.Kind == XEllipsis:
	case isStr:
		if want.Kind != XString || want.Str != gotS {
			res.err = fmt.Errorf("option value %q, expected %v", gotS, want)
		}
	default:
		w, err := r.intVal(want)
		if err != nil {
			return nil, r.failf(ev, "getsockopt value: %v", err)
		}
		if w != got {
			res.err = fmt.Errorf("option value [%d], expected %v", got, want)
		}
	}
	return immediate(res), nil
}

func (r *runner) sysFcntl(ev *Event) (func() (sysResult, bool), error) {
	s, err := r.sockArgs(ev, 2, 3)
	if err != nil {
		return nil, err
	}
	cmd, err := r.intVal(ev.Syscall.Args[1])
	if err != nil {
		return nil, r.failf(ev, "fcntl: %v", err)
	}
	switch cmd {
	case constants["F_GETFL"]:
		v := constants["O_RDWR"]
		if s.nonblock {
			v |= constants["O_NONBLOCK"]
		}
		return immediate(sysResult{ret: v}), nil
	case constants["F_SETFL"]:
		if len(ev.Syscall.Args) != 3 {
			return nil, r.failf(ev, "fcntl F_SETFL needs flags")
		}
		v, err := r.intVal(ev.Syscall.Args[2])
		if err != nil {
			return nil, r.failf(ev, "fcntl: %v", err)
		}
		s.nonblock = v&constants["O_NONBLOCK"] != 0
		return immediate(sysResult{}), nil
	}
	return nil, r.failf(ev, "fcntl: unsupported command %v", ev.Syscall.Args[1])
}

// revents computes poll readiness of a socket.
func (r *runner) revents(s *socket) int64 {
	var ev int64
	if s.listening {
		if len(s.acceptQ) > 0 {
			ev |= constants["POLLIN"] | constants["POLLRDNORM"]
		}
		return ev
	}
	if s.f == nil {
		return constants["POLLOUT"] | constants["POLLHUP"]
	}
	c := s.f.c
	st := c.State()
	if c.Readable() > 0 {
		ev |= constants["POLLIN"] | constants["POLLRDNORM"]
	}
	peerFin := st == tcp.CloseWait || st == tcp.LastAck || st == tcp.Closing || st == tcp.TimeWait
	if peerFin {
		ev |= constants["POLLIN"] | constants["POLLRDNORM"] | constants["POLLRDHUP"]
	}
	switch st {
	case tcp.Established, tcp.CloseWait:
		if c.Writable() > 0 {
			ev |= constants["POLLOUT"] | constants["POLLWRNORM"]
		}
	case tcp.Closed:
		if c.Err() != nil {
			ev |= constants["POLLERR"]
		}
		// a closed socket is shut down both ways: readable (EOF or the
		// error), writable (the write fails at once) and hung up
		ev |= constants["POLLIN"] | constants["POLLRDNORM"] | constants["POLLRDHUP"] | constants["POLLHUP"]
		ev |= constants["POLLOUT"] | constants["POLLWRNORM"]
	}
	return ev
}

func (r *runner) sysPoll(ev *Event) (func() (sysResult, bool), error) {
	if err := r.nargs(ev, 3); err != nil {
		return nil, err
	}
	sc := ev.Syscall
	if sc.Args[0].Kind != XList {
		return nil, r.failf(ev, "poll: first argument must be [{fd=N, events=..., revents=...}]")
	}
	type pfd struct {
		s            *socket
		events, want int64
		anyRevents   bool
	}
	var fds []pfd
	for _, e := range sc.Args[0].Elems {
		if e.Kind != XStruct {
			return nil, r.failf(ev, "poll: entries must be {fd=N, events=..., revents=...}")
		}
		var p pfd
		p.anyRevents = true
		for i, f := range e.Fields {
			switch f {
			case "fd":
				fd, err := r.intVal(e.Elems[i])
				if err != nil || r.fds[int(fd)] == nil {
					return nil, r.failf(ev, "poll: bad fd %v", e.Elems[i])
				}
				p.s = r.fds[int(fd)]
			case "events":
				v, err := r.intVal(e.Elems[i])
				if err != nil {
					return nil, r.failf(ev, "poll events: %v", err)
				}
				p.events = v
			case "revents":
				if e.Elems[i].Kind == XEllipsis {
					continue
				}
				v, err := r.intVal(e.Elems[i])
				if err != nil {
					return nil, r.failf(ev, "poll revents: %v", err)
				}
				p.want, p.anyRevents = v, false
			default:
				return nil, r.failf(ev, "poll: unknown field %q", f)
			}
		}
		if p.s == nil {
			return nil, r.failf(ev, "poll: entry without fd")
		}
		fds = append(fds, p)
	}
	timeout, err := r.intVal(sc.Args[2])
	if err != nil {
		return nil, r.failf(ev, "poll timeout: %v", err)
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = r.now.Add(time.Duration(timeout) * time.Millisecond)
		r.pollWake = deadline
	}
	always := constants["POLLERR"] | constants["POLLHUP"] | constants["POLLNVAL"]
	return func() (sysResult, bool) {
		n := 0
		got := make([]int64, len(fds))
		for i, p := range fds {
			got[i] = r.revents(p.s) & (p.events | always)
			if got[i] != 0 {
				n++
			}
		}
		if n == 0 && (deadline.IsZero() || r.now.Before(deadline)) {
			return sysResult{}, false
		}
		res := sysResult{ret: int64(n)}
		for i, p := range fds {
			if !p.anyRevents && got[i] != p.want {
				res.err = fmt.Errorf("fd %d revents %#x, expected %#x", p.s.fd, got[i], p.want)
			}
		}
		return res, true
	}, nil
}
