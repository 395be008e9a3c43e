package atlas

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"slices"
	"strings"
	"testing"
)

// solidSprite is a w×h sprite without transparent edges, its pixels made
// distinct by c and their position.
func solidSprite(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{c.R + uint8(x), c.G + uint8(y), c.B, 255})
		}
	}
	return img
}

// animatedSet is six stills and three four-frame animations of 12×14
// sprites, too many for one 48-pixel page. frames sets the frames per
// animation.
func animatedSet(frames int) []Sprite {
	var sp []Sprite
	for i := range 6 {
		sp = append(sp, Sprite{Name: fmt.Sprintf("still/%d", i), Image: solidSprite(10+(i*7+9)%17, 8+(i*5+3)%13, color.NRGBA{uint8(i * 30), 0, 0, 255})})
	}
	for _, an := range []string{"walk", "run", "jump"} {
		for f := range frames {
			sp = append(sp, Sprite{Name: fmt.Sprintf("%s/%d", an, f), Image: solidSprite(12, 14, color.NRGBA{uint8(f * 50), uint8(len(an) * 20), 27, 255}), Animation: an, Frame: f})
		}
	}
	return sp
}

// pagesOf returns the pages each animation's frames are on.
func pagesOf(frames []Frame, page func(k int) int) map[string][]int {
	out := map[string][]int{}
	for k := range frames {
		if an := frames[k].Animation; an != "" && !slices.Contains(out[an], page(k)) {
			out[an] = append(out[an], page(k))
		}
	}
	return out
}

func TestPackKeepsAnimationsOnOnePage(t *testing.T) {
	s := Settings{MaxSize: 48, Padding: 1}
	a, err := Pack(context.Background(), animatedSet(4), s)
	if err != nil {
		t.Fatal(err)
	}
	// The same rectangles laid out without the constraint split two of
	// the animations: this set tests the constraint.
	sizes := make([]image.Point, len(a.Frames))
	for k, f := range a.Frames {
		sizes[k] = image.Pt(f.W, f.H)
	}
	free, err := PackRects(context.Background(), sizes, s)
	if err != nil {
		t.Fatal(err)
	}
	splitBefore := 0
	for _, pages := range pagesOf(a.Frames, func(k int) int { return free.Places[k].Page }) {
		if len(pages) > 1 {
			splitBefore++
		}
	}
	if splitBefore == 0 {
		t.Fatal("without the constraint no animation is split; the set does not test it")
	}
	for an, pages := range pagesOf(a.Frames, func(k int) int { return a.Frames[k].Page }) {
		if len(pages) != 1 {
			t.Errorf("animation %s is on pages %v, want one page", an, pages)
		}
	}
	if got := a.SplitAnimations(); len(got) != 0 {
		t.Errorf("SplitAnimations = %v, want none", got)
	}
	if len(a.Pages) > len(free.Pages) {
		t.Errorf("the constraint costs pages: %d, %d without it", len(a.Pages), len(free.Pages))
	}
	a.Settings.Formats = []string{FormatJSONArray}
	if w := a.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q, want none", w)
	}
}

func TestPackSplitsAnimationsTooLargeForOnePage(t *testing.T) {
	// Twelve 12×14 frames cannot share a 48-pixel page.
	s := Settings{MaxSize: 48, Padding: 1, Formats: []string{FormatJSONHash, FormatJSONArray, FormatPhaser}}
	a, err := Pack(context.Background(), animatedSet(12), s)
	if err != nil {
		t.Fatal(err)
	}
	split := a.SplitAnimations()
	if !slices.Equal(split, []string{"jump", "run", "walk"}) {
		t.Fatalf("SplitAnimations = %v, want every animation", split)
	}
	w := a.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "json-array: animations \"jump\", \"run\", \"walk\" are too large for one page") || !strings.Contains(w[0], "phaser-multiatlas") {
		t.Errorf("warnings %q, want one json-array warning naming the animations and the formats to use", w)
	}
	a.Settings.Formats = []string{FormatJSONHash, FormatPhaser, FormatGodot, FormatLibGDX}
	if w := a.Warnings(); len(w) != 0 {
		t.Errorf("formats that carry cross-page animations warn %q", w)
	}
}

func TestUniqueGroupsMergesSharedFrames(t *testing.T) {
	frames := []Frame{
		{Name: "a/0", Animation: "a"}, {Name: "a/1", Animation: "a"},
		{Name: "b/0", Animation: "b"}, // shares a/1's pixels
		{Name: "c/0", Animation: "c"},
		{Name: "still"},
	}
	got := uniqueGroups(frames, []int{0, 1, 1, 2, 3}, 4)
	if want := []int{0, 0, 1, -1}; !slices.Equal(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
}
