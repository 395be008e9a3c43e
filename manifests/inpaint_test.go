package manifests

import (
	"reflect"
	"strings"
	"testing"
)

// TestInpaint checks the inpaint: block: its fields, defaults and the
// img2img source it sets.
func TestInpaint(t *testing.T) {
	p := mustLoad(t, map[string]string{"a.kiln.yaml": m(`assets:
  - {id: wall, kind: tileable, prompt: stone}
  - id: wall-moss
    kind: tileable
    prompt: moss
    inpaint: {from: wall, mask: art/mask.png, strength: 0.8, feather: 6}
  - id: poster
    kind: concept-art
    prompt: a poster
    inpaint: {from: wall, mask: art/poster.png}
`), "art/mask.png": "png", "art/poster.png": "png"})
	a := p.Asset("wall-moss")
	want := &InpaintOptions{From: "wall", Mask: "art/mask.png", Strength: 0.8, Feather: 6}
	if !reflect.DeepEqual(a.Inpaint, want) {
		t.Errorf("inpaint %+v, want %+v", a.Inpaint, want)
	}
	if a.From != "wall" || a.Strength != 0.8 {
		t.Errorf("from %q strength %g, want wall 0.8", a.From, a.Strength)
	}
	if got := a.Files(); !reflect.DeepEqual(got, []string{"art/mask.png"}) {
		t.Errorf("files %v, want the mask", got)
	}
	if got := a.At("from").String(); !strings.HasPrefix(got, "a.kiln.yaml:7:") {
		t.Errorf("from is at %s, want inpaint.from's line 7", got)
	}
	b := p.Asset("poster").Inpaint
	if b == nil || b.Strength != 1 || b.Feather != 0 {
		t.Errorf("defaults %+v, want strength 1 and feather 0", b)
	}
}

// TestInpaintErrors checks the inpaint: block's validation errors, with
// file:line:col.
func TestInpaintErrors(t *testing.T) {
	head := "assets:\n  - {id: wall, kind: tileable, prompt: stone}\n"
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"no mask", "  - {id: b, kind: tileable, prompt: s, inpaint: {from: wall}}\n", []string{
			`a.kiln.yaml:4:49: assets[1].inpaint: missing required field "mask" (add mask: art/NAME.png)`,
		}},
		{"no from", "  - {id: b, kind: tileable, prompt: s, inpaint: {mask: m.png}}\n", []string{
			`a.kiln.yaml:4:49: assets[1].inpaint: missing required field "from" (add from: ASSET_ID)`,
		}},
		{"unknown asset", "  - {id: b, kind: tileable, prompt: s, inpaint: {from: wal, mask: m.png}}\n", []string{
			`a.kiln.yaml:4:56: assets[1].from: unknown asset "wal" (did you mean "wall"?)`,
		}},
		{"itself", "  - {id: b, kind: tileable, prompt: s, inpaint: {from: b, mask: m.png}}\n", []string{
			`a.kiln.yaml:4:56: assets[1].from: an asset cannot be made from itself (name another asset)`,
		}},
		{"with from", "  - {id: b, kind: tileable, prompt: s, from: wall, inpaint: {from: wall, mask: m.png}}\n", []string{
			`a.kiln.yaml:4:40: assets[1].from: from and inpaint cannot both be set (inpaint has its own from and strength: move the value into the inpaint block)`,
		}},
		{"strength range", "  - {id: b, kind: tileable, prompt: s, inpaint: {from: wall, mask: m.png, strength: 2}}\n", []string{
			`a.kiln.yaml:4:85: assets[1].inpaint.strength: must be between 0 and 1, got 2`,
		}},
		{"feather range", "  - {id: b, kind: tileable, prompt: s, inpaint: {from: wall, mask: m.png, feather: -1}}\n", []string{
			`a.kiln.yaml:4:84: assets[1].inpaint.feather: must be between 0 and 256, got -1`,
		}},
		{"mask type", "  - {id: b, kind: tileable, prompt: s, inpaint: {from: wall, mask: m.gif}}\n", []string{
			`a.kiln.yaml:4:68: assets[1].inpaint.mask: expected a .png, .jpg or .jpeg file, got "m.gif"`,
		}},
		{"missing mask", "  - {id: b, kind: tileable, prompt: s, inpaint: {from: wall, mask: art/mask.pgn}}\n", []string{
			`a.kiln.yaml:4:68: assets[1].inpaint.mask: expected a .png, .jpg or .jpeg file, got "art/mask.pgn"`,
		}},
		{"missing mask file", "  - {id: b, kind: tileable, prompt: s, inpaint: {from: wall, mask: art/mask2.png}}\n", []string{
			`a.kiln.yaml:4:68: assets[1].inpaint.mask: mask file art/mask2.png not found (did you mean "art/mask.png"?)`,
		}},
		{"sprite sheet", "  - {id: b, kind: sprite-sheet, prompt: s, sprite: {frames: 2}, inpaint: {from: wall, mask: m.png}}\n", []string{
			`a.kiln.yaml:4:65: assets[1].inpaint: field "inpaint" does not apply to kind sprite-sheet (it applies to kind texture, tileable or concept-art)`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := errLines(t, map[string]string{"a.kiln.yaml": m(head + tc.body), "m.png": "png", "art/mask.png": "png"})
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}

// TestRepairSeams checks tileable.repair_seams, set on an asset or in a
// defaults block.
func TestRepairSeams(t *testing.T) {
	p := mustLoad(t, map[string]string{"a.kiln.yaml": m(`defaults:
  tileable: {repair_seams: true}
assets:
  - {id: a, kind: tileable, prompt: stone}
  - {id: b, kind: tileable, prompt: stone, tileable: {tile: x, repair_seams: false}}
`)})
	if o := p.Asset("a").Tileable; !o.RepairSeams || o.Tile != TileXY {
		t.Errorf("a: %+v, want repair_seams from the defaults", o)
	}
	if o := p.Asset("b").Tileable; o.RepairSeams || o.Tile != TileX {
		t.Errorf("b: %+v, want its own repair_seams: false", o)
	}
	got := errLines(t, map[string]string{"a.kiln.yaml": m("assets:\n  - {id: a, kind: tileable, prompt: s, tileable: {repair_seams: 3}}\n")})
	if len(got) != 1 || !strings.Contains(got[0], "assets[0].tileable.repair_seams") {
		t.Errorf("errors %q, want one at tileable.repair_seams", got)
	}
}
