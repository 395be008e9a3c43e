package manifests

import (
	"strings"
	"testing"
)

func TestRuntimeBatch(t *testing.T) {
	for _, tt := range []struct {
		block string
		want  int
	}{
		{"  threads: 2\n", 0},
		{"  batch: 1\n", 1},
		{"  batch: 6\n", 6},
	} {
		p := mustLoad(t, runtimeConfig(tt.block))
		if got := p.Config.Runtime.Batch; got != tt.want {
			t.Errorf("%q: Batch = %d, want %d", tt.block, got, tt.want)
		}
	}
	for _, tt := range []struct {
		block string
		want  string
	}{
		{"  batch: 0\n", "kiln.yaml:8:10: runtime.batch: must be between 1 and 256, got 0"},
		{"  batch: -2\n", "kiln.yaml:8:10: runtime.batch: must be between 1 and 256, got -2"},
		{"  batch: 2.5\n", "kiln.yaml:8:10: runtime.batch: expected an integer, got 2.5"},
		{"  batch: many\n", `kiln.yaml:8:10: runtime.batch: expected an integer, got "many"`},
	} {
		lines := errLines(t, runtimeConfig(tt.block))
		if len(lines) != 1 || lines[0] != tt.want {
			t.Errorf("%q: errors:\n%s\nwant:\n%s", tt.block, strings.Join(lines, "\n"), tt.want)
		}
	}
}
