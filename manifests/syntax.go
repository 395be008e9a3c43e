package manifests

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// YAML syntax errors
//
// yaml.v3 reports a syntax error at the line where the enclosing block
// starts (its "context"), for parser errors one line too early, and never
// with a column. kiln finds the offending token itself: it parses
// growing prefixes of the file with the same parser and takes the
// shortest prefix, by whole lines and then by characters, that fails with
// the same error as the whole file. That prefix ends on the first
// character the parser cannot accept. A few common mistakes are then
// placed on the token a person would fix (the key whose colon went
// unnoticed, the bracket that is never closed) and given a hint.

// maxSyntaxProbe is the largest file whose syntax error is located by
// probing. Each probe parses a prefix of the file, some twenty of them in
// all; yaml.v3 parses a few MB a second, so this bounds the search to
// about a second. Beyond it yaml.v3's own line is reported.
const maxSyntaxProbe = 256 << 10

// syntaxError turns a yaml.v3 error for data into a positioned Error
// with the source line. When no prefix of the file reproduces the error,
// yaml.v3's own line is kept.
func syntaxError(file string, data []byte, err error) *Error {
	full := err.Error()
	msg, reported := full, 0
	if m := yamlLine.FindStringSubmatch(full); m != nil {
		reported, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	e := &Error{Pos: Pos{File: file, Line: reported}, Msg: "invalid YAML: " + msg}
	src := newSourceLines(data)
	if len(data) > maxSyntaxProbe {
		if reported > 0 && reported <= src.count() {
			e.Source = string(src.text(reported))
		}
		return e
	}
	line, col := src.probe(full, reported)
	if line == 0 {
		return e
	}
	s := &syntaxSpot{src: src, line: line, col: col, msg: msg, reported: reported}
	s.refine()
	e.Pos.Line, e.Pos.Col = s.line, s.col
	if s.newMsg != "" {
		e.Msg = "invalid YAML: " + s.newMsg
	}
	e.Hint = s.hint
	e.Source = string(src.text(s.line))
	return e
}

// sourceLines is a file split into lines, for probing and excerpts.
type sourceLines struct {
	data []byte
	// starts holds the byte offset of each line's first byte; line n
	// (1-based) starts at starts[n-1].
	starts []int
}

func newSourceLines(data []byte) *sourceLines {
	s := &sourceLines{data: data, starts: []int{0}}
	for i, b := range data {
		if b == '\n' && i+1 < len(data) {
			s.starts = append(s.starts, i+1)
		}
	}
	return s
}

// count is the number of lines.
func (s *sourceLines) count() int { return len(s.starts) }

// end is the byte offset just after line n, its newline included.
func (s *sourceLines) end(n int) int {
	if n >= len(s.starts) {
		return len(s.data)
	}
	return s.starts[n]
}

// text is line n without its line break.
func (s *sourceLines) text(n int) []byte {
	if n < 1 || n > len(s.starts) {
		return nil
	}
	return bytes.TrimRight(s.data[s.starts[n-1]:s.end(n)], "\r\n")
}

// runes is line n as runes, so columns count characters as yaml.v3's do.
func (s *sourceLines) runes(n int) []rune { return []rune(string(s.text(n))) }

// failsLike reports whether parsing prefix fails with exactly the error
// text want (message and yaml.v3's line), reading at most two documents
// as parseYAML does.
func failsLike(prefix []byte, want string) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(prefix))
	for range 2 {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return false
		}
		if err != nil {
			return err.Error() == want
		}
	}
	return false
}

// probe returns the line and column (1-based, in characters) of the
// first character at which a prefix of the file fails with the error
// want, or 0, 0 when no prefix reproduces it. The offending token lies
// on or after the line yaml.v3 reported, so the search starts there.
func (s *sourceLines) probe(want string, reported int) (line, col int) {
	n := s.count()
	if !failsLike(s.data, want) {
		return 0, 0
	}
	lo, hi := max(reported, 1), n
	if lo > n {
		lo = n
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if failsLike(s.data[:s.end(mid)], want) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	line = lo
	// Within the line: the shortest prefix, in characters, that fails.
	base := s.starts[line-1]
	text := s.text(line)
	cuts := []int{base}
	for i := range string(text) {
		if i > 0 {
			cuts = append(cuts, base+i)
		}
	}
	cuts = append(cuts, base+len(text)) // cuts[j]: after j characters
	runes := len(cuts) - 1
	clo, chi := 1, runes+1 // runes+1 stands for the whole line
	for clo < chi {
		mid := (clo + chi) / 2
		if failsLike(s.data[:cuts[mid]], want) {
			chi = mid
		} else {
			clo = mid + 1
		}
	}
	if clo > runes {
		return line, firstNonBlank(s.runes(line))
	}
	return line, clo
}

// firstNonBlank is the 1-based column of the first character of r that
// is not a space or tab, or 1.
func firstNonBlank(r []rune) int {
	for i, c := range r {
		if c != ' ' && c != '\t' {
			return i + 1
		}
	}
	return 1
}

// syntaxSpot is a located syntax error being refined.
type syntaxSpot struct {
	src       *sourceLines
	line, col int
	msg       string // yaml.v3's message
	reported  int    // yaml.v3's line
	newMsg    string // replaces msg when set
	hint      string
}

// at is the character at the spot, or 0.
func (s *syntaxSpot) at() rune {
	r := s.src.runes(s.line)
	if s.col >= 1 && s.col <= len(r) {
		return r[s.col-1]
	}
	return 0
}

// noSpaceColon matches a "key:value" written without the space YAML
// needs after a key's colon; group 1 is the indentation and any "- ",
// group 2 the key.
var noSpaceColon = regexp.MustCompile(`^(\s*(?:-\s+)*)([A-Za-z_][A-Za-z0-9_.-]*):[^\s:/]`)

// refine moves the spot to the token a person would fix and sets a hint,
// for the mistakes people make most.
func (s *syntaxSpot) refine() {
	text := string(s.src.text(s.line))
	lead := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
	switch {
	case strings.Contains(s.msg, "tab character"), strings.ContainsRune(lead, '\t'):
		// A tab in the indentation of the line the parser stopped on
		// is the mistake, whatever the parser made of it.
		s.tab()
	case s.msg == "found unexpected end of stream":
		if q := s.at(); q == '"' || q == '\'' {
			s.hint = fmt.Sprintf("this quoted value is never closed; add the closing %c", q)
		}
	case strings.HasPrefix(s.msg, "did not find expected ',' or '"):
		s.flow()
	case s.msg == "mapping values are not allowed in this context":
		s.mappingValue()
	case s.msg == "could not find expected ':'":
		s.simpleKey()
	case s.msg == "did not find expected key" || s.msg == "did not find expected '-' indicator":
		s.block()
	case s.msg == "did not find expected <document start>":
		s.documentStart()
	case strings.HasPrefix(s.msg, "unknown anchor"):
		s.tokenStart()
		s.hint = `an alias "*name" needs an anchor "&name" on a value above it`
	}
}

// tab points at the first tab of the line's indentation.
func (s *syntaxSpot) tab() {
	r := s.src.runes(s.line)
	if s.at() != '\t' {
		for i, c := range r {
			if c == '\t' {
				s.col = i + 1
				break
			}
			if c != ' ' {
				break
			}
		}
	}
	s.hint = "YAML indentation must use spaces, not tabs"
}

// tokenStart moves the spot back from the character the parser stopped
// at to the start of the token it belongs to: a key when the parser
// stopped at its colon, a word, an alias.
func (s *syntaxSpot) tokenStart() {
	r := s.src.runes(s.line)
	c := s.col - 1
	if c < 0 || c >= len(r) {
		return
	}
	if r[c] == ':' && c > 0 && r[c-1] != ' ' && r[c-1] != '\t' {
		c--
	}
	if q := r[c]; (q == '"' || q == '\'') && c > 0 {
		if i := lastIndexRune(r[:c], q); i >= 0 {
			s.col = i + 1
			return
		}
	}
	for c > 0 && !strings.ContainsRune(" \t,[]{}#\"'", r[c-1]) && !strings.ContainsRune(",[]{}", r[c]) {
		c--
	}
	s.col = c + 1
}

func lastIndexRune(r []rune, q rune) int {
	for i := len(r) - 1; i >= 0; i-- {
		if r[i] == q {
			return i
		}
	}
	return -1
}

// prevContent returns the nearest line above line n that holds more
// than blanks and a comment, and its number, or 0.
func (s *sourceLines) prevContent(n int) (int, string) {
	for l := n - 1; l >= 1; l-- {
		t := strings.TrimSpace(string(s.text(l)))
		if t != "" && !strings.HasPrefix(t, "#") {
			return l, string(s.text(l))
		}
	}
	return 0, ""
}

// indent is the number of leading spaces of a line.
func indent(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }

// missingSpace reports a "key:value" on line l as the mistake, when it
// is one.
func (s *syntaxSpot) missingSpace(l int, text string) bool {
	m := noSpaceColon.FindStringSubmatchIndex(text)
	if m == nil {
		return false
	}
	colon := m[5] // the byte just after the key
	key := text[m[4]:m[5]]
	rest := strings.TrimSpace(text[colon+1:])
	if i := strings.Index(rest, " #"); i >= 0 {
		rest = strings.TrimSpace(rest[:i])
	}
	s.line = l
	s.col = utf8.RuneCountInString(text[:colon]) + 1
	s.newMsg = fmt.Sprintf("%s has no space after its colon, so YAML reads it as text, not as a key", quote(key+":"+rest))
	s.hint = fmt.Sprintf("write %s", quote(key+": "+rest))
	return true
}

// mappingValue places "mapping values are not allowed": a colon where a
// plain value cannot have one. Either a key on the line above lacks the
// space after its colon and swallowed this line as its value, or this
// line is indented more than the key above it, or the value has ": " in
// it and needs quotes.
func (s *syntaxSpot) mappingValue() {
	text := string(s.src.text(s.line))
	r := []rune(text)
	before := strings.TrimSpace(string(r[:min(max(s.col-1, 0), len(r))]))
	keyOnly := before != "" && !strings.ContainsAny(before, " \t:") // "name" alone before the colon
	if keyOnly {
		if l, prev := s.src.prevContent(s.line); l > 0 && indent(prev) <= indent(text) {
			if s.missingSpace(l, prev) {
				return
			}
			if indent(prev) < indent(text) && strings.Contains(prev, ": ") {
				s.col = firstNonBlank(r)
				s.hint = "this line is indented more than the line above it, so YAML reads it as the rest of that line's value; indent it like the keys around it"
				return
			}
		}
	}
	if l := s.line; s.missingSpace(l, text) {
		return
	}
	s.hint = `a value that contains ": " must be quoted, e.g. prompt: "castle: at night"`
}

// simpleKey places "could not find expected ':'": a line inside a
// mapping that is not "key: value", most often "key:value".
func (s *syntaxSpot) simpleKey() {
	if s.missingSpace(s.line, string(s.src.text(s.line))) {
		return
	}
	s.tokenStart()
	s.hint = `each line of a mapping is "key: value"; add the ": " or indent the line under a key`
}

// block places a token that does not fit the block around it: a key
// indented unlike its neighbours, or a "- " item among the keys of a
// mapping.
func (s *syntaxSpot) block() {
	s.tokenStart()
	r := s.src.runes(s.line)
	text := string(r)
	if f := firstNonBlank(r); f < len(r) && r[f-1] == '-' && r[f] != ' ' && r[f] != '\t' && s.col > f {
		s.col = f // "-{id: b}" or "-id: b": the dash that lacks its space
	}
	switch c := s.at(); {
	case c == ']' || c == '}':
		s.hint = fmt.Sprintf("this %q closes no bracket; remove it", string(c))
	case c == ':':
		s.hint = "a key is missing before this colon"
	case c == '-' && s.col < len(r) && r[s.col] != ' ' && r[s.col] != '\t':
		s.hint = fmt.Sprintf("a list item needs a space after its \"-\": write %q", strings.TrimSpace(text[:len(string(r[:s.col]))]+" "+string(r[s.col:])))
	case c == '-':
		_, above := s.src.prevContent(s.line)
		among := indent(above) == indent(text) && !strings.HasPrefix(strings.TrimLeft(above, " "), "-")
		if l, prev := s.src.prevItem(s.line); !among && l > 0 && indent(prev) != indent(text) {
			s.hint = fmt.Sprintf("this \"- \" is in column %d but the one on line %d in column %d; line the items of a list up", indent(text)+1, l, indent(prev)+1)
			return
		}
		s.hint = `a "- " list item cannot stand among the keys of a mapping; indent it under a key that holds a list, or remove the "- "`
	case s.col > firstNonBlank(r):
		s.hint = "there is more on this line than one value; quote the whole value, or move the rest to a line of its own"
	default:
		s.hint = "this line is not indented like the lines around it; line it up with the keys of the entry it belongs to"
	}
}

// prevItem returns the nearest line above line n that starts a list item
// ("- " after its indentation), and its number, or 0.
func (s *sourceLines) prevItem(n int) (int, string) {
	for l := n - 1; l >= 1; l-- {
		t := string(s.text(l))
		if rest := strings.TrimLeft(t, " "); strings.HasPrefix(rest, "- ") || rest == "-" {
			return l, t
		}
	}
	return 0, ""
}

// documentStart places "did not find expected <document start>": most
// often the file's first key is indented, so its top-level keys end the
// document; otherwise something follows a "..." end marker.
func (s *syntaxSpot) documentStart() {
	for l := 1; l <= s.src.count() && l < s.line; l++ {
		t := string(s.src.text(l))
		trim := strings.TrimSpace(t)
		if trim == "" || strings.HasPrefix(trim, "#") || strings.HasPrefix(trim, "%") || trim == "---" {
			continue
		}
		if indent(t) > 0 {
			s.line, s.col = l, indent(t)+1
			s.hint = "the first key of the file is indented; top-level keys start in the first column"
			return
		}
		break
	}
	s.hint = `a manifest is one YAML document; remove this line, or the "..." above it`
}

// flow places "did not find expected ',' or ']'" (or '}'): the parser
// names the bracket it is inside on the line after the one it reports.
// The bracket of that kind on that line which is never closed, or is
// closed by the wrong bracket, is the one to fix.
func (s *syntaxSpot) flow() {
	open, closeCh := '[', ']'
	if strings.HasSuffix(s.msg, "'}'") {
		open, closeCh = '{', '}'
	}
	for _, b := range []int{s.reported + 1, s.reported, s.line} {
		if b < 1 || b > s.src.count() {
			continue
		}
		starts := flowStarts(s.src.runes(b))
		for i := len(starts) - 1; i >= 0; i-- {
			c := starts[i]
			if s.src.runes(b)[c] != open {
				continue
			}
			bad, bl, bc := s.src.flowEnd(b, c)
			switch {
			case bad == 0:
				s.line, s.col = b, c+1
				s.hint = fmt.Sprintf("this %q is never closed; add %q after its last item", string(open), string(closeCh))
				return
			case bad != closeCh:
				s.line, s.col = b, c+1
				s.hint = fmt.Sprintf("this %q is closed by the %q at %d:%d; use %q, or add the missing bracket", string(open), string(bad), bl, bc, string(closeCh))
				return
			}
		}
	}
	s.hint = fmt.Sprintf("separate the items with \",\" and close the list with %q", string(closeCh))
}

// flowStarts returns the indexes in a line of the brackets that open a
// flow collection: in block context only where a value starts (line
// start, after "- " or ": "), anywhere inside flow context. Quoted text
// and comments are skipped.
func flowStarts(r []rune) []int {
	var out []int
	depth := 0
	var quote rune
	prev := ' ' // the previous non-blank character, ' ' at line start
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			continue
		case c == ' ' || c == '\t':
			continue
		case c == '#' && (i == 0 || r[i-1] == ' ' || r[i-1] == '\t'):
			return out
		case depth == 0 && (c == '"' || c == '\'') && strings.ContainsRune(" :-?", prev):
			quote = c
		case depth > 0 && (c == '"' || c == '\'') && strings.ContainsRune(" [{,:", prev):
			quote = c
		case (c == '[' || c == '{') && (depth > 0 || strings.ContainsRune(" :-?", prev)):
			out = append(out, i)
			depth++
		case (c == ']' || c == '}') && depth > 0:
			depth--
		}
		prev = c
	}
	return out
}

// flowEnd scans from the bracket at column index c of line l to the
// bracket that closes it. It returns 0 when none does before the end of
// the file, or the closing bracket and its position (1-based) when it is
// found; a wrong closing bracket ends the scan there.
func (s *sourceLines) flowEnd(l, c int) (closer rune, line, col int) {
	var stack []rune
	var quote rune
	for n := l; n <= s.count(); n++ {
		r := s.runes(n)
		i := 0
		if n == l {
			i = c
		}
		for ; i < len(r); i++ {
			ch := r[i]
			switch {
			case quote != 0:
				if ch == quote {
					quote = 0
				}
			case ch == '#' && i > 0 && (r[i-1] == ' ' || r[i-1] == '\t'):
				i = len(r)
			case ch == '"' || ch == '\'':
				if i == 0 || strings.ContainsRune(" \t[{,:", r[i-1]) {
					quote = ch
				}
			case ch == '[' || ch == '{':
				stack = append(stack, ch)
			case ch == ']' || ch == '}':
				want := ']'
				if stack[len(stack)-1] == '{' {
					want = '}'
				}
				if ch != want {
					return ch, n, i + 1
				}
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return ch, n, i + 1
				}
			}
		}
	}
	return 0, 0, 0
}

// excerpt renders the source line of a position with a caret under its
// column, the way compilers show an error: the line number and the text,
// then a line of the same width whose tabs are kept so the caret lines
// up in any terminal.
func excerpt(line int, text string, col int) string {
	num := strconv.Itoa(line)
	var b strings.Builder
	b.WriteString(" ")
	b.WriteString(num)
	b.WriteString(" | ")
	b.WriteString(text)
	if col <= 0 {
		return b.String()
	}
	b.WriteString("\n ")
	b.WriteString(strings.Repeat(" ", len(num)))
	b.WriteString(" | ")
	r := []rune(text)
	for i := 0; i < col-1 && i < len(r); i++ {
		if r[i] == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteByte('^')
	return b.String()
}
