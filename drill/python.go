package drill

import (
	"fmt"
	"strconv"
	"strings"
)

// The %{ }% blocks of packetdrill run Python with the socket's tcp_info in
// variables named tcpi_*. ustack evaluates the simple subset scripts use:
// lines of `assert EXPR[, message]` where EXPR combines names, integers,
// comparisons, arithmetic, bitwise & | and `and`/`or`/`not`. Anything
// else is an error naming the line.

// pyAssert is one assert statement.
type pyAssert struct {
	line int
	expr string
}

// parsePython splits a python block into assert statements. firstLine is
// the script line of the %{.
func parsePython(code string, firstLine int) ([]pyAssert, error) {
	var out []pyAssert
	for i, raw := range strings.Split(code, "\n") {
		line := firstLine + i
		s := strings.TrimSpace(raw)
		if s == "" || s[0] == '#' {
			continue
		}
		rest, ok := strings.CutPrefix(s, "assert ")
		if !ok {
			return nil, &Error{Line: line, Msg: fmt.Sprintf("unsupported python statement %q (only simple assert lines are supported)", s)}
		}
		// drop a trailing ", message" at depth 0
		depth := 0
		inStr := byte(0)
		cut := -1
		for j := 0; j < len(rest); j++ {
			c := rest[j]
			switch {
			case inStr != 0:
				if c == inStr {
					inStr = 0
				}
			case c == '"' || c == '\'':
				inStr = c
			case c == '(':
				depth++
			case c == ')':
				depth--
			case c == ',' && depth == 0 && cut < 0:
				cut = j
			}
		}
		if cut >= 0 {
			rest = rest[:cut]
		}
		out = append(out, pyAssert{line: line, expr: strings.TrimSpace(rest)})
	}
	return out, nil
}

type pyTok struct {
	s   string
	num bool
	v   int64
}

func pyLex(s string) ([]pyTok, error) {
	var out []pyTok
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case isDigit(c):
			j := i
			for j < len(s) && (isAlnum(s[j])) {
				j++
			}
			v, err := strconv.ParseInt(s[i:j], 0, 64)
			if err != nil {
				return nil, fmt.Errorf("bad number %q", s[i:j])
			}
			out = append(out, pyTok{s: s[i:j], num: true, v: v})
			i = j
		case isAlpha(c) || c == '_':
			j := i
			for j < len(s) && (isAlnum(s[j]) || s[j] == '_') {
				j++
			}
			out = append(out, pyTok{s: s[i:j]})
			i = j
		default:
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "==", "!=", "<=", ">=", "//", "<<", ">>":
				out = append(out, pyTok{s: two})
				i += 2
				continue
			}
			if strings.IndexByte("<>+-*/%&|()~", c) >= 0 {
				out = append(out, pyTok{s: string(c)})
				i++
				continue
			}
			return nil, fmt.Errorf("unsupported character %q", c)
		}
	}
	return out, nil
}

type pyEval struct {
	toks []pyTok
	pos  int
	vars func(name string) (int64, bool)
}

func (e *pyEval) peek() string {
	if e.pos < len(e.toks) {
		return e.toks[e.pos].s
	}
	return ""
}

// evalPython evaluates an assert expression; nonzero is true.
func evalPython(expr string, vars func(string) (int64, bool)) (int64, error) {
	toks, err := pyLex(expr)
	if err != nil {
		return 0, err
	}
	e := &pyEval{toks: toks, vars: vars}
	v, err := e.or(0)
	if err != nil {
		return 0, err
	}
	if e.pos != len(e.toks) {
		return 0, fmt.Errorf("unexpected %q", e.peek())
	}
	return v, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (e *pyEval) or(d int) (int64, error) {
	v, err := e.and(d)
	for err == nil && e.peek() == "or" {
		e.pos++
		var w int64
		w, err = e.and(d)
		v = b2i(v != 0 || w != 0)
	}
	return v, err
}

func (e *pyEval) and(d int) (int64, error) {
	v, err := e.not(d)
	for err == nil && e.peek() == "and" {
		e.pos++
		var w int64
		w, err = e.not(d)
		v = b2i(v != 0 && w != 0)
	}
	return v, err
}

func (e *pyEval) not(d int) (int64, error) {
	if e.peek() == "not" {
		e.pos++
		v, err := e.not(d + 1)
		return b2i(v == 0), err
	}
	return e.cmp(d)
}

func (e *pyEval) cmp(d int) (int64, error) {
	left, err := e.bitor(d)
	if err != nil {
		return 0, err
	}
	result := int64(1)
	seen := false
	for {
		op := e.peek()
		switch op {
		case "==", "!=", "<", "<=", ">", ">=":
		default:
			if !seen {
				return left, nil
			}
			return result, nil
		}
		seen = true
		e.pos++
		right, err := e.bitor(d)
		if err != nil {
			return 0, err
		}
		var ok bool
		switch op {
		case "==":
			ok = left == right
		case "!=":
			ok = left != right
		case "<":
			ok = left < right
		case "<=":
			ok = left <= right
		case ">":
			ok = left > right
		case ">=":
			ok = left >= right
		}
		if !ok {
			result = 0
		}
		left = right
	}
}

func (e *pyEval) bitor(d int) (int64, error) {
	v, err := e.bitand(d)
	for err == nil && e.peek() == "|" {
		e.pos++
		var w int64
		w, err = e.bitand(d)
		v |= w
	}
	return v, err
}

func (e *pyEval) bitand(d int) (int64, error) {
	v, err := e.sum(d)
	for err == nil && e.peek() == "&" {
		e.pos++
		var w int64
		w, err = e.sum(d)
		v &= w
	}
	return v, err
}

func (e *pyEval) sum(d int) (int64, error) {
	v, err := e.prod(d)
	for err == nil && (e.peek() == "+" || e.peek() == "-") {
		op := e.peek()
		e.pos++
		var w int64
		w, err = e.prod(d)
		if op == "+" {
			v += w
		} else {
			v -= w
		}
	}
	return v, err
}

func (e *pyEval) prod(d int) (int64, error) {
	v, err := e.unary(d)
	for err == nil && (e.peek() == "*" || e.peek() == "/" || e.peek() == "//" || e.peek() == "%") {
		op := e.peek()
		e.pos++
		var w int64
		w, err = e.unary(d)
		if err != nil {
			break
		}
		switch op {
		case "*":
			v *= w
		default:
			if w == 0 {
				return 0, fmt.Errorf("division by zero")
			}
			if op == "%" {
				v %= w
			} else {
				v /= w
			}
		}
	}
	return v, err
}

func (e *pyEval) unary(d int) (int64, error) {
	if d > 50 {
		return 0, fmt.Errorf("expression nested too deeply")
	}
	switch e.peek() {
	case "-":
		e.pos++
		v, err := e.unary(d + 1)
		return -v, err
	case "~":
		e.pos++
		v, err := e.unary(d + 1)
		return ^v, err
	case "(":
		e.pos++
		v, err := e.or(d + 1)
		if err != nil {
			return 0, err
		}
		if e.peek() != ")" {
			return 0, fmt.Errorf("missing ')'")
		}
		e.pos++
		return v, nil
	}
	if e.pos >= len(e.toks) {
		return 0, fmt.Errorf("unexpected end of expression")
	}
	t := e.toks[e.pos]
	e.pos++
	if t.num {
		return t.v, nil
	}
	if t.s == "True" {
		return 1, nil
	}
	if t.s == "False" {
		return 0, nil
	}
	if !isAlpha(t.s[0]) && t.s[0] != '_' {
		return 0, fmt.Errorf("unexpected %q", t.s)
	}
	v, ok := e.vars(t.s)
	if !ok {
		return 0, fmt.Errorf("unknown name %q", t.s)
	}
	return v, nil
}
