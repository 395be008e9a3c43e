package manifests

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// syntaxCases are the YAML mistakes people make most, each with the
// position of the token to fix. Line 1 of every manifest is "version: 1".
var syntaxCases = []struct {
	name string
	body string // the manifest after its version line
	// want is the error's first line: position, message and hint.
	want string
}{
	{"key indented less than its item (the issue's line 8)",
		"# a comment\n# another\nassets:\n  - id: a\n    kind: image\n    image: {source: a.png}\n  kind: image\n",
		`a.kiln.yaml:8:3: invalid YAML: did not find expected '-' indicator (this line is not indented like the lines around it; line it up with the keys of the entry it belongs to)`},
	{"key indented between two levels",
		"assets:\n  - id: a\n    kind: image\n   image: {source: a.png}\n",
		`a.kiln.yaml:5:4: invalid YAML: did not find expected '-' indicator (this line is not indented like the lines around it; line it up with the keys of the entry it belongs to)`},
	{"key indented more than the one above",
		"assets:\n  - id: a\n    kind: image\n      image: {source: a.png}\n",
		`a.kiln.yaml:5:7: invalid YAML: mapping values are not allowed in this context (this line is indented more than the line above it, so YAML reads it as the rest of that line's value; indent it like the keys around it)`},
	{"top-level key indented by one",
		"defaults:\n  steps: 3\n assets: []\n",
		`a.kiln.yaml:4:2: invalid YAML: did not find expected key (this line is not indented like the lines around it; line it up with the keys of the entry it belongs to)`},
	{"tab in indentation",
		"assets:\n  - id: a\n\tkind: image\n",
		`a.kiln.yaml:4:1: invalid YAML: found a tab character that violates indentation (YAML indentation must use spaces, not tabs)`},
	{"tab indenting a key",
		"defaults:\n  steps: 3\n  \tseed: 4\n",
		`a.kiln.yaml:4:3: invalid YAML: found a tab character that violates indentation (YAML indentation must use spaces, not tabs)`},
	{"tab before a list item",
		"assets:\n\t- id: a\n",
		`a.kiln.yaml:3:1: invalid YAML: found character that cannot start any token (YAML indentation must use spaces, not tabs)`},
	{"unclosed double quote",
		"assets:\n  - id: a\n    kind: tileable\n    prompt: \"mossy stone\n    steps: 4\n",
		`a.kiln.yaml:5:13: invalid YAML: found unexpected end of stream (this quoted value is never closed; add the closing ")`},
	{"unclosed single quote",
		"assets:\n  - id: a\n    kind: tileable\n    prompt: 'mossy stone\n",
		`a.kiln.yaml:5:13: invalid YAML: found unexpected end of stream (this quoted value is never closed; add the closing ')`},
	{"unclosed bracket",
		"assets:\n  - id: a\n    kind: tileable\n    tags: [a, b\n    prompt: stone\n",
		`a.kiln.yaml:5:11: invalid YAML: did not find expected ',' or ']' (this "[" is never closed; add "]" after its last item)`},
	{"unclosed bracket over several lines",
		"assets:\n  - id: a\n    kind: tileable\n    tags: [a,\n      b,\n      c\n    prompt: stone\n",
		`a.kiln.yaml:5:11: invalid YAML: did not find expected ',' or ']' (this "[" is never closed; add "]" after its last item)`},
	{"unclosed brace",
		"assets:\n  - {id: a, kind: tileable, prompt: stone\n  - {id: b, kind: tileable, prompt: grass}\n",
		`a.kiln.yaml:3:5: invalid YAML: did not find expected ',' or '}' (this "{" is never closed; add "}" after its last item)`},
	{"bracket closed by a brace",
		"assets:\n  - {id: a, kind: tileable, prompt: stone, tags: [x, y}\n",
		`a.kiln.yaml:3:50: invalid YAML: did not find expected ',' or ']' (this "[" is closed by the "}" at 3:55; use "]", or add the missing bracket)`},
	{"stray closing bracket",
		"assets: [a]]\n",
		`a.kiln.yaml:2:12: invalid YAML: did not find expected key (this "]" closes no bracket; remove it)`},
	{"list item among the keys of a mapping",
		"assets:\n  - id: a\n    kind: tileable\n    - prompt: stone\n",
		`a.kiln.yaml:5:5: invalid YAML: did not find expected key (a "- " list item cannot stand among the keys of a mapping; indent it under a key that holds a list, or remove the "- ")`},
	{"no space after a colon",
		"assets:\n  - id: a\n    kind:tileable\n    prompt: stone\n",
		`a.kiln.yaml:4:9: invalid YAML: "kind:tileable" has no space after its colon, so YAML reads it as text, not as a key (write "kind: tileable")`},
	{"no space after the first key's colon",
		"defaults:\n  steps:3\n  seed: 4\n",
		`a.kiln.yaml:3:8: invalid YAML: "steps:3" has no space after its colon, so YAML reads it as text, not as a key (write "steps: 3")`},
	{"colon in an unquoted value",
		"assets:\n  - id: a\n    kind: tileable\n    prompt: castle: at night\n",
		`a.kiln.yaml:5:19: invalid YAML: mapping values are not allowed in this context (a value that contains ": " must be quoted, e.g. prompt: "castle: at night")`},
	{"alias without an anchor",
		"assets:\n  - id: a\n    kind: tileable\n    prompt: *stone\n",
		`a.kiln.yaml:5:13: invalid YAML: unknown anchor 'stone' referenced (an alias "*name" needs an anchor "&name" on a value above it)`},
	{"list items not lined up",
		"assets:\n- {id: a, kind: tileable, prompt: stone}\n - {id: b, kind: tileable, prompt: stone}\n",
		`a.kiln.yaml:4:2: invalid YAML: did not find expected key (this "- " is in column 2 but the one on line 3 in column 1; line the items of a list up)`},
	{"no space after a list dash",
		"assets:\n  - {id: a, kind: tileable, prompt: stone}\n  -{id: b, kind: tileable, prompt: stone}\n",
		`a.kiln.yaml:4:3: invalid YAML: did not find expected '-' indicator (a list item needs a space after its "-": write "- {id: b, kind: tileable, prompt: stone}")`},
	{"text after a quoted value",
		"assets:\n  - id: a\n    kind: tileable\n    prompt: \"stone\" wall\n",
		`a.kiln.yaml:5:21: invalid YAML: did not find expected key (there is more on this line than one value; quote the whole value, or move the rest to a line of its own)`},
	{"first key indented",
		"",
		`a.kiln.yaml:1:3: invalid YAML: did not find expected <document start> (the first key of the file is indented; top-level keys start in the first column)`},
	{"windows line ends",
		"assets:\r\n  - id: a\r\n    kind: image\r\n   image: {source: a.png}\r\n",
		`a.kiln.yaml:5:4: invalid YAML: did not find expected '-' indicator (this line is not indented like the lines around it; line it up with the keys of the entry it belongs to)`},
	{"duplicate key",
		"assets:\n  - id: a\n    kind: tileable\n    prompt: stone\n    prompt: grass\n",
		`a.kiln.yaml:6:5: assets[0].prompt: duplicate field "prompt": also set at a.kiln.yaml:5:5 (remove one of them)`},
}

// TestSyntaxErrorPositions checks that each common mistake is reported
// once, at the token to fix, with nothing else from the file.
func TestSyntaxErrorPositions(t *testing.T) {
	for _, c := range syntaxCases {
		t.Run(c.name, func(t *testing.T) {
			src := m(c.body)
			if c.body == "" {
				src = "  version: 1\nassets: []\n"
			}
			_, err := LoadFS(project(map[string]string{"a.kiln.yaml": src, "a.png": "x"}))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("want an ErrorList, got %v", err)
			}
			if len(list) != 1 {
				t.Fatalf("want one error, got %d:\n%v", len(list), list)
			}
			got, _, _ := strings.Cut(list[0].Error(), "\n")
			if got != c.want {
				t.Errorf("error:\n got %s\nwant %s", got, c.want)
			}
			if strings.HasPrefix(list[0].Msg, "invalid YAML") && list[0].Source == "" {
				t.Errorf("a syntax error carries no source line")
			}
		})
	}
}

// TestSyntaxErrorInConfig checks kiln.yaml's syntax errors are placed the
// same way.
func TestSyntaxErrorInConfig(t *testing.T) {
	got := errLines(t, map[string]string{ConfigFile: "version: 1\nruntime:\n  device: cpu\n threads: 2\n"})
	want := []string{
		`kiln.yaml:4:2: invalid YAML: did not find expected key (this line is not indented like the lines around it; line it up with the keys of the entry it belongs to)`,
		` 4 |  threads: 2`,
		`   |  ^`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSyntaxErrorNoFollowOn checks that a file with a syntax error makes
// no "unknown asset" errors in the files that refer to its assets, while
// references to ids it does not mention are still reported.
func TestSyntaxErrorNoFollowOn(t *testing.T) {
	got := errLines(t, map[string]string{
		"a.kiln.yaml": m("assets:\n  - id: ui/button\n    kind: image\n    image: {source: a.png}\n   kind: image\n"),
		"b.kiln.yaml": m("atlases:\n  - {id: ui/main, include: [ui/button, \"ui/*\", ui/nothing]}\n" +
			"materials:\n  - {id: m, base_color: ui/button}\n"),
		"a.png": "x",
	})
	want := []string{
		`a.kiln.yaml:6:4: invalid YAML: did not find expected '-' indicator (this line is not indented like the lines around it; line it up with the keys of the entry it belongs to)`,
		` 6 |    kind: image`,
		`   |    ^`,
		`b.kiln.yaml:3:48: atlases[0].include[2]: unknown asset "ui/nothing"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSyntaxErrorBigFile checks a mistake deep in a long file is found
// at its line, not at the start of the list it is in.
func TestSyntaxErrorBigFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("assets:\n")
	for i := range 2000 {
		b.WriteString("  - id: a" + strconv.Itoa(i) + "\n    kind: image\n    image: {source: a.png}\n")
	}
	b.WriteString("  - id: last\n   kind: image\n")
	_, err := LoadFS(project(map[string]string{"a.kiln.yaml": m(b.String()), "a.png": "x"}))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("want one error, got %v", err)
	}
	if got, want := list[0].Pos.String(), "a.kiln.yaml:6004:4"; got != want {
		t.Errorf("position %s, want %s", got, want)
	}
}

// TestCaretGolden checks how a syntax error shows its line: the line
// number and text, then a caret under the column, with the line's tabs
// kept in front of the caret so it lines up in any terminal.
func TestCaretGolden(t *testing.T) {
	cases := []struct{ name, body string }{
		{"tab inside a value's indentation", "assets:\n  - id: a\n    kind: tileable\n    prompt:\t\"stone\n"},
		{"tab indentation", "assets:\n  - id: a\n\t  kind: image\n"},
		{"wide characters", "assets:\n  - {id: a, kind: tileable, prompt: \"岩と苔\", tags: [x, y}\n"},
		{"no space after a colon", "defaults:\n  steps:3\n  seed: 4\n"},
	}
	var b strings.Builder
	for _, c := range cases {
		_, err := LoadFS(project(map[string]string{"a.kiln.yaml": m(c.body)}))
		b.WriteString("== " + c.name + "\n")
		b.WriteString(err.Error())
		b.WriteString("\n")
	}
	golden := filepath.Join("testdata", "caret.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestCaretGolden -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("caret rendering differs from %s:\n got:\n%s\nwant:\n%s", golden, b.String(), want)
	}
}

// TestExcerpt checks the caret line directly: tabs before the column are
// kept, everything else becomes a space, and an unknown column shows the
// line alone.
func TestExcerpt(t *testing.T) {
	for _, c := range []struct {
		line, col int
		text      string
		want      string
	}{
		{3, 1, "x: 1", " 3 | x: 1\n   | ^"},
		{12, 5, "\t  a: b", " 12 | \t  a: b\n    | \t   ^"},
		{7, 0, "a: b", " 7 | a: b"},
		{2, 9, "ab", " 2 | ab\n   |   ^"},
	} {
		if got := excerpt(c.line, c.text, c.col); got != c.want {
			t.Errorf("excerpt(%d, %q, %d) = %q, want %q", c.line, c.text, c.col, got, c.want)
		}
	}
}

// BenchmarkSyntaxErrorLocate measures placing a syntax error at the end of
// a manifest as large as kiln still probes (maxSyntaxProbe): the worst
// case, since every probe parses nearly the whole file.
func BenchmarkSyntaxErrorLocate(b *testing.B) {
	var s strings.Builder
	s.WriteString("version: 1\nassets:\n")
	for i := 0; s.Len() < maxSyntaxProbe-100; i++ {
		s.WriteString("  - id: a" + strconv.Itoa(i) + "\n    kind: image\n    image: {source: a.png}\n")
	}
	s.WriteString("  - id: last\n   kind: image\n")
	data := []byte(s.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, e := parseYAML("a.kiln.yaml", data); e == nil || e.Pos.Col != 4 {
			b.Fatalf("error %v", e)
		}
	}
}
