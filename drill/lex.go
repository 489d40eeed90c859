package drill

import (
	"fmt"
	"strings"
)

// tokKind classifies a token of the script language.
type tokKind int

const (
	tEOF     tokKind = iota
	tNewline         // end of a statement
	tNumber          // 12, .5, 0.100, 0x1f
	tIdent           // socket, S, sackOK, SO_REUSEADDR, tcpi_state
	tPunct           // + - * ~ ... < > ( ) [ ] { } , = : | & . !
	tString          // "text" (Text holds the unquoted text)
	tShell           // `command` (Text holds the command)
	tPython          // %{ code }% (Text holds the code)
	tOption          // --name=value at the start of a line
)

type token struct {
	kind tokKind
	text string
	line int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tNewline:
		return "end of line"
	case tString:
		return fmt.Sprintf("%q", t.text)
	case tShell:
		return "`" + t.text + "`"
	case tPython:
		return "%{...}%"
	}
	return fmt.Sprintf("%q", t.text)
}

// lex splits a script into tokens. Comments (// to end of line and /* */)
// are dropped; newlines are kept as statement ends (runs collapsed).
func lex(src string) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	n := len(src)
	depth := 0 // (), [] and {} nesting: statements continue across lines
	addNL := func() {
		if depth > 0 {
			return
		}
		if len(toks) > 0 && toks[len(toks)-1].kind != tNewline {
			toks = append(toks, token{kind: tNewline, line: line})
		}
	}
	for i < n {
		c := src[i]
		switch {
		case c == '\n':
			addNL()
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < n && src[i+1] == '/':
			for i < n && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && src[i+1] == '*':
			start := line
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return nil, &Error{Line: start, Msg: "unterminated /* comment"}
			}
			line += strings.Count(src[i:i+2+j+2], "\n")
			i += 2 + j + 2
		case c == '#' && (len(toks) == 0 || toks[len(toks)-1].kind == tNewline):
			// shell-style comment line (some scripts start with #!)
			for i < n && src[i] != '\n' {
				i++
			}
		case c == '`':
			j := strings.IndexByte(src[i+1:], '`')
			if j < 0 {
				return nil, &Error{Line: line, Msg: "unterminated backquoted command"}
			}
			text := src[i+1 : i+1+j]
			toks = append(toks, token{kind: tShell, text: text, line: line})
			line += strings.Count(text, "\n")
			i += j + 2
		case c == '%' && i+1 < n && src[i+1] == '{':
			j := strings.Index(src[i+2:], "}%")
			if j < 0 {
				return nil, &Error{Line: line, Msg: "unterminated %{ python block"}
			}
			text := src[i+2 : i+2+j]
			toks = append(toks, token{kind: tPython, text: text, line: line})
			line += strings.Count(text, "\n")
			i += j + 4
		case c == '"':
			j := i + 1
			var sb strings.Builder
			for j < n && src[j] != '"' && src[j] != '\n' {
				if src[j] == '\\' && j+1 < n {
					j++
					switch src[j] {
					case 'n':
						sb.WriteByte('\n')
					case 't':
						sb.WriteByte('\t')
					default:
						sb.WriteByte(src[j])
					}
					j++
					continue
				}
				sb.WriteByte(src[j])
				j++
			}
			if j >= n || src[j] != '"' {
				return nil, &Error{Line: line, Msg: "unterminated string"}
			}
			toks = append(toks, token{kind: tString, text: sb.String(), line: line})
			i = j + 1
		case c == '-' && i+1 < n && src[i+1] == '-' && (len(toks) == 0 || toks[len(toks)-1].kind == tNewline):
			j := i
			for j < n && src[j] != '\n' && src[j] != ' ' && src[j] != '\t' {
				j++
			}
			toks = append(toks, token{kind: tOption, text: src[i+2 : j], line: line})
			i = j
		case isDigit(c) || (c == '.' && i+1 < n && isDigit(src[i+1])):
			j := i
			if c == '0' && i+1 < n && (src[i+1] == 'x' || src[i+1] == 'X') {
				j += 2
				for j < n && isHex(src[j]) {
					j++
				}
			} else if c == '.' {
				j = i + 1
				for j < n && isDigit(src[j]) {
					j++
				}
			} else {
				for j < n && isDigit(src[j]) {
					j++
				}
				if j+1 < n && src[j] == '.' && isDigit(src[j+1]) {
					j++
					for j < n && isDigit(src[j]) {
						j++
					}
				}
			}
			// identifiers may contain digits after letters only, but hex
			// cookies like 3a2b may start with a digit: absorb letters.
			for j < n && (isAlnum(src[j])) {
				j++
			}
			toks = append(toks, token{kind: tNumber, text: src[i:j], line: line})
			i = j
		case isAlpha(c) || c == '_':
			j := i
			for j < n && (isAlnum(src[j]) || src[j] == '_') {
				j++
			}
			toks = append(toks, token{kind: tIdent, text: src[i:j], line: line})
			i = j
		case c == '.' && i+2 < n && src[i+1] == '.' && src[i+2] == '.':
			toks = append(toks, token{kind: tPunct, text: "...", line: line})
			i += 3
		case strings.IndexByte("+-*~<>()[]{},=:|&.!/", c) >= 0:
			switch c {
			case '(', '[', '{':
				depth++
			case ')', ']', '}':
				if depth > 0 {
					depth--
				}
			}
			toks = append(toks, token{kind: tPunct, text: string(c), line: line})
			i++
		default:
			return nil, &Error{Line: line, Msg: fmt.Sprintf("unexpected character %q", c)}
		}
	}
	addNL()
	toks = append(toks, token{kind: tEOF, line: line})
	return toks, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }
