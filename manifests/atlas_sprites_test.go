package manifests

import (
	"reflect"
	"slices"
	"testing"
)

// atlasManifest is a manifest with one image asset and an atlas ui/atlas
// of it whose further fields are rest (the atlas starts on line 6).
func atlasManifest(rest string) string {
	return m("assets:\n" +
		"  - {id: ui/button, kind: image, image: {source: a.png}}\n" +
		"atlases:\n" +
		"  - id: ui/atlas\n" +
		"    include: [ui/button]\n" + rest)
}

func TestAtlasScalesAndSprites(t *testing.T) {
	p := mustLoad(t, map[string]string{"a.kiln.yaml": atlasManifest("    scales: [1, 0.5]\n" +
		"    sprites:\n" +
		"      ui/button: {pivot: [0.5, 1], slice: [4, 3, 4, 5]}\n" +
		"  - {id: plain, include: [ui/button]}\n")})
	a := p.Atlas("ui/atlas")
	if !slices.Equal(a.Scales, []float64{1, 0.5}) {
		t.Errorf("scales %v, want [1 0.5]", a.Scales)
	}
	want := map[string]AtlasSprite{"ui/button": {Pivot: &[2]float64{0.5, 1}, Slice: &[4]int{4, 3, 4, 5}}}
	if !reflect.DeepEqual(a.Sprites, want) {
		t.Errorf("sprites %+v, want %+v", a.Sprites, want)
	}
	if b := p.Atlas("plain"); !slices.Equal(b.Scales, []float64{1}) || b.Sprites != nil {
		t.Errorf("defaults: scales %v sprites %v, want [1] and none", b.Scales, b.Sprites)
	}
	if pos := a.At("sprites.ui/button.pivot"); pos.Line != 9 {
		t.Errorf("pivot position %v, want line 9", pos)
	}
}

func TestAtlasSpriteErrors(t *testing.T) {
	got := errLines(t, map[string]string{"a.kiln.yaml": atlasManifest("    scales: [2]\n" +
		"    sprites:\n" +
		"      ui/button: {pivot: [0.5, 1.5], slice: [4, 3, 4]}\n" +
		"      Bad: {pivot: [0, 0]}\n")})
	want := []string{
		"a.kiln.yaml:7:14: atlases[0].scales[0]",
		"a.kiln.yaml:9:32: atlases[0].sprites.ui/button.pivot[1]: must be between 0 and 1",
		"a.kiln.yaml:9:45: atlases[0].sprites.ui/button.slice",
		"a.kiln.yaml:10:7: atlases[0].sprites.Bad",
	}
	if len(got) != len(want) {
		t.Fatalf("errors:\n%v\nwant %d", got, len(want))
	}
	for i, w := range want {
		if len(got[i]) < len(w) || got[i][:len(w)] != w {
			t.Errorf("error %d: %s\nwant it to start with %s", i, got[i], w)
		}
	}
}
