package manifests

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// TestParserDepthLimitHasPosition checks that nesting deep enough to trip
// the YAML library's own limit (which reports no position) is reported at
// the bracket that went too deep.
func TestParserDepthLimitHasPosition(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"flow lists", "version: 1\nassets: []\nx-deep: " + strings.Repeat("[", 20000), "a.kiln.yaml:3:73"},
		{"flow maps after a comment and strings", "version: 1\n# [[[[\nx-s: \"[[[\\\"[[\"\nx-t: '[[''['\nx-deep: " + strings.Repeat("{a: ", 20000), "a.kiln.yaml:5:265"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFS(fstest.MapFS{
				ConfigFile:    &fstest.MapFile{Data: []byte(baseConfig)},
				"a.kiln.yaml": &fstest.MapFile{Data: []byte(tt.data)},
			})
			var list ErrorList
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("err = %v, want one error", err)
			}
			if got := list[0].Pos.String(); got != tt.want || !strings.Contains(list[0].Msg, "YAML nesting is deeper than 64 levels") {
				t.Fatalf("error at %s: %s; want it at %s", got, list[0].Msg, tt.want)
			}
		})
	}
}

func TestFlowDepthPos(t *testing.T) {
	tests := []struct {
		data      string
		line, col int
	}{
		{"[[[", 1, 3},
		{"a: [[\n  x]] [[", 0, 0},
		{"a: [[\n  [x]]", 2, 3},
		{"a: '[[[[' [[[", 1, 13},
		{`a: "\\" [[[`, 1, 11},
		{"é: [[[", 1, 6},
	}
	for _, tt := range tests {
		if l, c := flowDepthPos([]byte(tt.data), 2); l != tt.line || c != tt.col {
			t.Errorf("flowDepthPos(%q) = %d:%d, want %d:%d", tt.data, l, c, tt.line, tt.col)
		}
	}
}
