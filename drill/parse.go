package drill

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ustack/ustack/wire"
)

// Parse parses a packetdrill script. Errors name the line.
func Parse(src string) (*Script, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	return p.script()
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) is(text string) bool {
	t := p.peek()
	return (t.kind == tPunct || t.kind == tIdent) && t.text == text
}

func (p *parser) errf(t token, format string, args ...any) error {
	return &Error{Line: t.line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) expect(text string) error {
	t := p.next()
	if (t.kind != tPunct && t.kind != tIdent) || t.text != text {
		return p.errf(t, "expected %q, found %v", text, t)
	}
	return nil
}

func (p *parser) script() (*Script, error) {
	s := &Script{}
	for {
		t := p.peek()
		switch t.kind {
		case tEOF:
			return s, nil
		case tNewline:
			p.next()
			continue
		case tOption:
			p.next()
			name, val, _ := strings.Cut(t.text, "=")
			s.Options = append(s.Options, ScriptOption{Line: t.line, Name: name, Value: val})
			if err := p.endOfLine(); err != nil {
				return nil, err
			}
			continue
		}
		ev, err := p.event()
		if err != nil {
			return nil, err
		}
		s.Events = append(s.Events, ev)
	}
}

func (p *parser) endOfLine() error {
	t := p.next()
	if t.kind != tNewline && t.kind != tEOF {
		return p.errf(t, "unexpected %v at end of statement", t)
	}
	return nil
}

// duration parses a number of seconds.
func parseSeconds(t token) (time.Duration, error) {
	if t.kind != tNumber {
		return 0, &Error{Line: t.line, Msg: fmt.Sprintf("expected a time in seconds, found %v", t)}
	}
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil || f < 0 || f > 1e7 || math.IsNaN(f) {
		return 0, &Error{Line: t.line, Msg: fmt.Sprintf("bad time %q", t.text)}
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, nil
}

func (p *parser) timeValue() (time.Duration, bool, error) {
	rel := false
	if p.is("+") {
		p.next()
		rel = true
	}
	d, err := parseSeconds(p.next())
	return d, rel, err
}

func (p *parser) event() (*Event, error) {
	t := p.peek()
	ev := &Event{Line: t.line}
	if t.kind == tShell || t.kind == tPython {
		// an untimed command or python block runs in sequence (+0)
		ev.Time.Kind = TimeRelative
	} else if p.is("*") {
		p.next()
		ev.Time.Kind = TimeAny
	} else {
		d, rel, err := p.timeValue()
		if err != nil {
			return nil, err
		}
		ev.Time.T = d
		if rel {
			ev.Time.Kind = TimeRelative
		}
		if p.is("~") {
			p.next()
			d, rel, err := p.timeValue()
			if err != nil {
				return nil, err
			}
			ev.Time.HasRange, ev.Time.RangeEnd, ev.Time.RangeRel = true, d, rel
		}
	}
	if p.is("...") {
		p.next()
		d, rel, err := p.timeValue()
		if err != nil {
			return nil, err
		}
		ev.Time.Blocking, ev.Time.End, ev.Time.EndRel = true, d, rel
	}
	t = p.peek()
	switch {
	case t.kind == tShell:
		p.next()
		ev.Kind, ev.Text = EvShell, t.text
	case t.kind == tPython:
		p.next()
		ev.Kind, ev.Text = EvPython, t.text
	case t.kind == tPunct && (t.text == "<" || t.text == ">"):
		pk, err := p.packet()
		if err != nil {
			return nil, err
		}
		ev.Kind, ev.Packet = EvPacket, pk
	case t.kind == tIdent:
		sc, err := p.syscall()
		if err != nil {
			return nil, err
		}
		ev.Kind, ev.Syscall = EvSyscall, sc
	default:
		return nil, p.errf(t, "expected a packet, system call, `command` or %%{ python }%% after the time, found %v", t)
	}
	if ev.Time.Blocking && ev.Kind != EvSyscall {
		return nil, &Error{Line: ev.Line, Msg: "only system calls may block (start...end)"}
	}
	if ev.Time.HasRange && (ev.Kind != EvPacket || ev.Packet.Inbound) {
		return nil, &Error{Line: ev.Line, Msg: "a time range (a~b) is only allowed for outbound packets"}
	}
	return ev, p.endOfLine()
}

func (p *parser) uint32Tok() (uint32, error) {
	t := p.next()
	if t.kind != tNumber {
		return 0, p.errf(t, "expected a number, found %v", t)
	}
	v, err := strconv.ParseUint(t.text, 0, 32)
	if err != nil {
		return 0, p.errf(t, "bad number %q (want 0..4294967295)", t.text)
	}
	return uint32(v), nil
}

var flagBits = map[byte]uint8{
	'F': wire.TCPFlagFIN, 'S': wire.TCPFlagSYN, 'R': wire.TCPFlagRST, 'P': wire.TCPFlagPSH,
	'.': wire.TCPFlagACK, 'U': wire.TCPFlagURG, 'E': wire.TCPFlagECE, 'W': wire.TCPFlagCWR,
}

func (p *parser) packet() (*Packet, error) {
	dir := p.next()
	pk := &Packet{Inbound: dir.text == "<"}
	if p.is("[") {
		p.next()
		t := p.next()
		switch t.text {
		case "noecn", "ect0", "ect1", "ce", "ect01":
			pk.ECN = t.text
		default:
			return nil, p.errf(t, "unknown ECN marking [%s] (noecn, ect0, ect1, ect01, ce)", t.text)
		}
		if err := p.expect("]"); err != nil {
			return nil, err
		}
	}
	// flags: identifiers and dots up to the sequence number ("-" = none)
	var fl strings.Builder
	if p.is("-") {
		p.next()
		fl.WriteString("-")
	}
	for {
		t := p.peek()
		if (t.kind == tIdent || (t.kind == tPunct && t.text == ".")) && fl.Len() < 16 {
			fl.WriteString(t.text)
			p.next()
			continue
		}
		break
	}
	if fl.Len() == 0 {
		return nil, p.errf(p.peek(), "expected TCP flags (S . P F R ...) after %q", dir.text)
	}
	pk.FlagText = fl.String()
	for i := 0; i < len(pk.FlagText) && pk.FlagText != "-"; i++ {
		b, ok := flagBits[pk.FlagText[i]]
		if !ok {
			return nil, p.errf(dir, "unknown TCP flag %q in %q", pk.FlagText[i], pk.FlagText)
		}
		pk.Flags |= b
	}
	var err error
	if pk.Seq, err = p.uint32Tok(); err != nil {
		return nil, err
	}
	if err := p.expect(":"); err != nil {
		return nil, err
	}
	if pk.End, err = p.uint32Tok(); err != nil {
		return nil, err
	}
	if err := p.expect("("); err != nil {
		return nil, err
	}
	l, err := p.uint32Tok()
	if err != nil {
		return nil, err
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	if l > 1<<20 {
		return nil, p.errf(dir, "payload length %d too large", l)
	}
	pk.Len = int(l)
	if pk.End-pk.Seq != l {
		return nil, p.errf(dir, "sequence range %d:%d does not match length %d", pk.Seq, pk.End, l)
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tIdent && t.text == "ack":
			p.next()
			if pk.Ack, err = p.uint32Tok(); err != nil {
				return nil, err
			}
			pk.HasAck = true
		case t.kind == tIdent && t.text == "win":
			p.next()
			w, err := p.uint32Tok()
			if err != nil {
				return nil, err
			}
			if w > 65535 {
				return nil, p.errf(t, "window %d does not fit 16 bits", w)
			}
			pk.Win, pk.HasWin = uint16(w), true
		case t.kind == tIdent && t.text == "urg":
			p.next()
			u, err := p.uint32Tok()
			if err != nil {
				return nil, err
			}
			if u > 65535 {
				return nil, p.errf(t, "urgent pointer %d does not fit 16 bits", u)
			}
			pk.Urg, pk.HasUrg = uint16(u), true
		case t.kind == tPunct && t.text == "<":
			p.next()
			if err := p.options(pk); err != nil {
				return nil, err
			}
		default:
			return pk, nil
		}
	}
}

func (p *parser) options(pk *Packet) error {
	if p.is("...") {
		p.next()
		pk.AnyOpts = true
		return p.expect(">")
	}
	pk.Opts = []PktOpt{}
	for {
		t := p.next()
		if t.kind != tIdent {
			return p.errf(t, "expected a TCP option name, found %v", t)
		}
		var o PktOpt
		var err error
		switch t.text {
		case "nop":
			o.Kind = OptNOP
		case "eol":
			o.Kind = OptEOL
		case "mss":
			o.Kind = OptMSS
			if o.Val, err = p.uint32Tok(); err != nil {
				return err
			}
			if o.Val > 65535 {
				return p.errf(t, "mss %d does not fit 16 bits", o.Val)
			}
		case "wscale":
			o.Kind = OptWScale
			if o.Val, err = p.uint32Tok(); err != nil {
				return err
			}
			if o.Val > 255 {
				return p.errf(t, "wscale %d does not fit 8 bits", o.Val)
			}
		case "sackOK":
			o.Kind = OptSACKOK
		case "sack":
			o.Kind = OptSACK
			for p.peek().kind == tNumber {
				l, err := p.uint32Tok()
				if err != nil {
					return err
				}
				if err := p.expect(":"); err != nil {
					return err
				}
				r, err := p.uint32Tok()
				if err != nil {
					return err
				}
				o.Blocks = append(o.Blocks, [2]uint32{l, r})
			}
			if len(o.Blocks) == 0 || len(o.Blocks) > 4 {
				return p.errf(t, "sack needs 1 to 4 blocks a:b")
			}
		case "TS":
			o.Kind = OptTS
			if err := p.expect("val"); err != nil {
				return err
			}
			if o.Val, err = p.uint32Tok(); err != nil {
				return err
			}
			if err := p.expect("ecr"); err != nil {
				return err
			}
			if o.Ecr, err = p.uint32Tok(); err != nil {
				return err
			}
		case "FO", "FOEXP":
			o.Kind = OptFO
			if t.text == "FOEXP" {
				o.Kind = OptFOExp
			}
			n := p.peek()
			if n.kind == tNumber || n.kind == tIdent {
				p.next()
				s := strings.TrimPrefix(n.text, "0x")
				c, err := hex.DecodeString(s)
				if err != nil || len(c) > 16 {
					return p.errf(n, "bad Fast Open cookie %q (hex, at most 16 bytes)", n.text)
				}
				o.Cookie = c
			}
		default:
			return p.errf(t, "unsupported TCP option %q", t.text)
		}
		pk.Opts = append(pk.Opts, o)
		if len(pk.Opts) > 40 {
			return p.errf(t, "too many options")
		}
		n := p.next()
		if n.kind == tPunct && n.text == ">" {
			return nil
		}
		if n.kind != tPunct || n.text != "," {
			return p.errf(n, "expected ',' or '>' in options, found %v", n)
		}
	}
}

func (p *parser) syscall() (*Syscall, error) {
	name := p.next()
	sc := &Syscall{Name: name.text}
	if err := p.expect("("); err != nil {
		return nil, err
	}
	if !p.is(")") {
		for {
			e, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			sc.Args = append(sc.Args, e)
			if p.is(",") {
				p.next()
				continue
			}
			break
		}
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	if err := p.expect("="); err != nil {
		return nil, err
	}
	r, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	sc.Result = r
	if t := p.peek(); t.kind == tIdent {
		p.next()
		sc.Errno = t.text
	}
	if p.is("(") {
		{
			p.next()
			var words []string
			for !p.is(")") {
				w := p.next()
				if w.kind == tNewline || w.kind == tEOF {
					return nil, p.errf(w, "unterminated errno text")
				}
				words = append(words, w.text)
			}
			p.next()
			sc.ErrText = strings.Join(words, " ")
		}
	}
	return sc, nil
}

func (p *parser) expr(depth int) (Expr, error) {
	if depth > 20 {
		return Expr{}, p.errf(p.peek(), "expression nested too deeply")
	}
	e, err := p.term(depth)
	if err != nil {
		return e, err
	}
	if !p.is("|") {
		return e, nil
	}
	or := Expr{Kind: XOr, Elems: []Expr{e}}
	for p.is("|") {
		p.next()
		e, err := p.term(depth)
		if err != nil {
			return e, err
		}
		or.Elems = append(or.Elems, e)
	}
	return or, nil
}

func (p *parser) term(depth int) (Expr, error) {
	t := p.next()
	switch {
	case t.kind == tNumber:
		v, err := strconv.ParseInt(t.text, 0, 64)
		if err != nil {
			u, err2 := strconv.ParseUint(t.text, 0, 64)
			if err2 != nil {
				return Expr{}, p.errf(t, "bad number %q", t.text)
			}
			v = int64(u)
		}
		return Expr{Kind: XInt, Int: v}, nil
	case t.kind == tPunct && t.text == "-":
		n := p.next()
		if n.kind != tNumber {
			return Expr{}, p.errf(n, "expected a number after '-'")
		}
		v, err := strconv.ParseInt(n.text, 0, 64)
		if err != nil {
			return Expr{}, p.errf(n, "bad number %q", n.text)
		}
		return Expr{Kind: XInt, Int: -v}, nil
	case t.kind == tPunct && t.text == "...":
		return Expr{Kind: XEllipsis}, nil
	case t.kind == tString:
		return Expr{Kind: XString, Str: t.text}, nil
	case t.kind == tIdent:
		if p.is("(") {
			p.next()
			c := Expr{Kind: XCall, Name: t.text}
			for !p.is(")") {
				e, err := p.expr(depth + 1)
				if err != nil {
					return e, err
				}
				c.Elems = append(c.Elems, e)
				if p.is(",") {
					p.next()
				} else if !p.is(")") {
					return Expr{}, p.errf(p.peek(), "expected ',' or ')', found %v", p.peek())
				}
			}
			p.next()
			return c, nil
		}
		return Expr{Kind: XIdent, Name: t.text}, nil
	case t.kind == tPunct && t.text == "[":
		l := Expr{Kind: XList}
		for !p.is("]") {
			e, err := p.expr(depth + 1)
			if err != nil {
				return e, err
			}
			l.Elems = append(l.Elems, e)
			if p.is(",") {
				p.next()
			} else if !p.is("]") {
				return Expr{}, p.errf(p.peek(), "expected ',' or ']', found %v", p.peek())
			}
		}
		p.next()
		return l, nil
	case t.kind == tPunct && t.text == "{":
		s := Expr{Kind: XStruct}
		for !p.is("}") {
			field := ""
			if p.peek().kind == tIdent && p.toks[p.pos+1].kind == tPunct && p.toks[p.pos+1].text == "=" {
				field = p.next().text
				p.next()
			}
			e, err := p.expr(depth + 1)
			if err != nil {
				return e, err
			}
			s.Elems = append(s.Elems, e)
			s.Fields = append(s.Fields, field)
			if p.is(",") {
				p.next()
			} else if !p.is("}") {
				return Expr{}, p.errf(p.peek(), "expected ',' or '}', found %v", p.peek())
			}
		}
		p.next()
		return s, nil
	}
	return Expr{}, p.errf(t, "unexpected %v in system call", t)
}
