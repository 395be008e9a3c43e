package atlas

import (
	"fmt"
	"strings"
)

// Warnings returns what the data files of a.Settings.Formats cannot carry,
// one sentence each, in a fixed order: animations whose frames span pages
// where a format describes one page per file, and pivots and 9-slice
// borders where a format has no field for them. Nothing is lost from the
// formats that can carry these; the warnings say which one to use instead.
func (a *Atlas) Warnings() []string {
	var out []string
	split := a.SplitAnimations()
	if len(split) > 0 && a.wants(FormatJSONArray) {
		out = append(out, fmt.Sprintf("json-array: %s %s too large for one page, so %s frames span pages; each json-array file describes one page and leaves %s out (Phaser: use phaser-multiatlas; PixiJS: json-hash, whose first file lists every animation in meta.animations)",
			list(split, "animation"), pronoun(split, "is", "are"), pronoun(split, "its", "their"), pronoun(split, "it", "them")))
	}
	var pivots, animSlices []string
	for k := range a.Frames {
		f := &a.Frames[k]
		if f.HasPivot {
			pivots = append(pivots, f.Name)
		}
		// Stills' borders go everywhere: JSON borders, a Godot
		// StyleBoxTexture, libGDX split.
		if f.HasSlice && f.Animation != "" {
			animSlices = append(animSlices, f.Name)
		}
	}
	if len(pivots) > 0 && a.wants(FormatGodot) {
		out = append(out, fmt.Sprintf("godot: Godot's AtlasTexture and SpriteFrames have no origin, so the pivot of %s is not written; set the Sprite2D's offset instead", list(pivots, "sprite")))
	}
	if len(pivots) > 0 && a.wants(FormatLibGDX) {
		out = append(out, fmt.Sprintf("libgdx: the libGDX atlas format has no origin, so the pivot of %s is not written; set it on the Sprite (setOrigin) instead", list(pivots, "sprite")))
	}
	if len(animSlices) > 0 && a.wants(FormatGodot) {
		out = append(out, fmt.Sprintf("godot: SpriteFrames has no 9-slice borders, so the slice of %s is not written; the JSON formats and libgdx carry it", list(animSlices, "frame")))
	}
	return out
}

// list names up to four items ("sprite "a"", "sprites "a", "b" and 3 more").
func list(names []string, noun string) string {
	const show = 4
	q := make([]string, 0, show)
	for i, n := range names {
		if i == show {
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	s := strings.Join(q, ", ")
	if len(names) > show {
		s += fmt.Sprintf(" and %d more", len(names)-show)
	}
	if len(names) == 1 {
		return noun + " " + s
	}
	return noun + "s " + s
}

func pronoun(names []string, one, many string) string {
	if len(names) == 1 {
		return one
	}
	return many
}
