package manifests

import (
	"errors"
	"fmt"
	"github.com/kiln-dev/kiln/internal/spelling"
	"sort"
	"strconv"
	"strings"
)

// ErrNoConfig is wrapped by the error Load returns when the project folder
// has no kiln.yaml, so the CLI can tell "not a project" from a bad manifest.
var ErrNoConfig = errors.New("no kiln.yaml")

// Pos is a position in a project file. File is relative to the project root
// and slash-separated; Line and Col are 1-based. A zero Col (or Line) means
// the position is not known that precisely.
type Pos struct {
	File      string
	Line, Col int
}

// String formats the position as "file:line:col", the form editors and
// terminals turn into links. Unknown parts are left off ("file:line",
// "file").
func (p Pos) String() string {
	switch {
	case p.Line <= 0:
		return p.File
	case p.Col <= 0:
		return p.File + ":" + strconv.Itoa(p.Line)
	default:
		return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
	}
}

// IsValid reports whether the position names a file.
func (p Pos) IsValid() bool { return p.File != "" }

// before orders positions by file, then line, then column.
func (p Pos) before(q Pos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Col < q.Col
}

// Error is one problem in a project file: where it is, which field, what is
// wrong and, when kiln can tell, what to do about it.
type Error struct {
	Pos Pos
	// Field is the path of the field inside the file, e.g. "assets[2].size"
	// or "runtime.device"; empty for problems with the file as a whole.
	Field string
	// Msg says what is wrong.
	Msg string
	// Hint says what to do, e.g. `did you mean "prompt"?`; may be empty.
	Hint string
	// Source is the text of the line Pos points into, set for YAML
	// syntax errors, where seeing the line is the quickest way to the
	// mistake. Error shows it with a caret under Pos.Col.
	Source string
}

// Error formats the problem as "file:line:col: field: msg (hint)", followed,
// when Source is set, by the source line and a caret under the column.
func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	if e.Source != "" && e.Pos.Line > 0 {
		b.WriteByte('\n')
		b.WriteString(excerpt(e.Pos.Line, e.Source, e.Pos.Col))
	}
	return b.String()
}

// ErrorList is every problem found in a project, sorted by file and
// position. Load returns all of them at once so a designer can fix a whole
// file in one pass.
type ErrorList []*Error

// Error formats the list one problem per line (three for a syntax error,
// whose source line and caret follow it).
func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns l as an error, or nil when l is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Sort orders the list by file, line, column, then field and message, so
// output is deterministic.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Pos != b.Pos {
			return a.Pos.before(b.Pos)
		}
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Msg < b.Msg
	})
}

// quote formats a user value for a message: quoted, and shortened when long
// so a pasted paragraph does not flood the terminal.
func quote(s string) string {
	const max = 40
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return strconv.Quote(s)
}

// joinNames formats names as "a, b, c" for hints.
func joinNames(names []string) string {
	return strings.Join(names, ", ")
}

// suggest returns the candidate closest to name, or "" when none is close
// enough to be a plausible typo. Case, '_' and '-' are ignored first, so
// "negativePrompt" finds "negative_prompt".
func suggest(name string, candidates []string) string {
	norm := func(s string) string {
		s = strings.ToLower(s)
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(s)
	}
	n := norm(name)
	best, bestD := "", -1
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := spelling.Distance(n, norm(c))
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	limit := 2
	if l := len([]rune(n)) / 3; l > limit {
		limit = l
	}
	if bestD > limit || bestD >= len([]rune(n)) {
		return ""
	}
	return best
}

// didYouMean returns a hint suggesting the closest candidate, or "".
func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return ""
}
