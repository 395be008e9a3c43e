package atlas

import (
	"context"
	"image"
	"slices"
	"testing"
)

// TestHeuristicsAllPack checks that every listed name is accepted and
// packs, and that a name off the list is refused.
func TestHeuristicsAllPack(t *testing.T) {
	names := Heuristics()
	if len(names) != 2+2*int(numHeuristics) {
		t.Fatalf("Heuristics() = %v: want best, global and each rule alone and global", names)
	}
	sizes := []image.Point{{30, 20}, {12, 40}, {25, 25}, {8, 8}}
	for _, h := range names {
		if _, err := parseHeuristic(h); err != nil {
			t.Errorf("%s: %v", h, err)
			continue
		}
		if _, err := PackRects(context.Background(), sizes, Settings{MaxSize: 128, Heuristic: h}); err != nil {
			t.Errorf("pack with %s: %v", h, err)
		}
	}
	for _, bad := range []string{"best-short-side-fit", "bottom-left", "global-best-fit", "BSSF", "global-global"} {
		if slices.Contains(names, bad) {
			t.Errorf("%q is listed", bad)
		}
		if _, err := parseHeuristic(bad); err == nil {
			t.Errorf("%q is accepted", bad)
		}
	}
}
