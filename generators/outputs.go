package generators

import (
	"fmt"
	"strconv"

	"github.com/kiln-dev/kiln/manifests"
)

// Output names inside stages (pipeline.Run.Create names). Exporters read
// these through OutputRef values instead of spelling them.
const (
	// ImageOutput is the image of every stage that makes one picture:
	// image sources, generations, hires passes. Same as SourceOutput.
	ImageOutput = SourceOutput
	// SheetOutput is a sprite-sheet's grid sheet.
	SheetOutput = "sheet.png"
	// AnimationOutput is a sprite-sheet's animation metadata (Animation,
	// as JSON).
	AnimationOutput = "animation.json"
	// ContactOutput is a concept-art contact sheet.
	ContactOutput = "contact.png"
)

// OutputRef names one output of one stage: what a dependent stage passes
// to pipeline.Run.Input.
type OutputRef struct {
	Stage  string
	Output string
}

// Stage IDs. Every stage of an asset is "<asset id>:<step>".

// GenerateStage is the generation stage of a tileable or texture asset.
func GenerateStage(id string) string { return id + ":generate" }

// DeriveStage is the PBR derivation stage of a texture asset.
func DeriveStage(id string) string { return id + ":derive" }

// FrameStage is the generation stage of frame i of a sprite-sheet with n
// frames.
func FrameStage(id string, i, n int) string { return id + ":" + numbered("frame", i, n) }

// SheetStage is a sprite-sheet's post-processing stage: keying,
// pixel-art, frames, sheet and metadata.
func SheetStage(id string) string { return id + ":sheet" }

// VariationStage generates variation k of a concept-art asset with n
// variations.
func VariationStage(id string, k, n int) string { return id + ":" + numbered("variation", k, n) }

// HiresStage is the hires pass of variation k of a concept-art asset.
func HiresStage(id string, k, n int) string { return id + ":" + numbered("hires", k, n) }

// ContactStage draws a concept-art asset's contact sheet.
func ContactStage(id string) string { return id + ":contact" }

// MapOutput is the output name of a derived texture map ("normal.png").
func MapOutput(m string) string { return m + ".png" }

// FrameOutput is the output name of frame i of n in a SheetStage
// ("frame_000.png").
func FrameOutput(i, n int) string { return numbered("frame", i, n) + ".png" }

// numbered formats "name_007": three digits, more when n needs them, so
// names sort in order.
func numbered(name string, i, n int) string {
	digits := 3
	for m := max(n-1, 0); m >= 1000; m /= 10 {
		digits++
	}
	var num [20]byte
	d := strconv.AppendInt(num[:0], int64(i), 10)
	b := make([]byte, 0, len(name)+1+max(digits, len(d)))
	b = append(b, name...)
	b = append(b, '_')
	for k := len(d); k < digits; k++ {
		b = append(b, '0')
	}
	return string(append(b, d...))
}

// Published paths, relative to the output folder. See the package
// documentation for the whole convention.

// MainPath is an asset's main file: its image, a texture's albedo, a
// sprite-sheet's grid sheet, a concept-art contact sheet.
func MainPath(id string) string { return id + ".png" }

// MapPath is a derived texture map's file ("dungeon/floor_normal.png").
func MapPath(id, m string) string { return id + "_" + m + ".png" }

// FramePath is frame i of n of a sprite-sheet ("hero/walk/frame_000.png").
func FramePath(id string, i, n int) string { return id + "/" + FrameOutput(i, n) }

// AnimationPath is a sprite-sheet's metadata file ("hero/walk.json").
func AnimationPath(id string) string { return id + ".json" }

// VariationPath is variation k of n of a concept-art asset
// ("concept/castle/variation_000.png").
func VariationPath(id string, k, n int) string {
	return id + "/" + numbered("variation", k, n) + ".png"
}

// SourceImage returns the image a from: reference to asset a with pick
// reads: an image asset's pixels, a tileable image, a texture's albedo,
// the generated frame pick of a sprite-sheet (before keying, at generation
// size: img2img wants the full picture), or the final variation pick of a
// concept-art asset (after its hires pass, if any).
func SourceImage(a *manifests.Asset, pick int) (OutputRef, error) {
	if pick < 0 {
		return OutputRef{}, fmt.Errorf("pick %d is negative", pick)
	}
	switch a.Kind {
	case manifests.KindImage:
		if pick != 0 {
			return OutputRef{}, fmt.Errorf("pick chooses a concept-art variation or a sprite-sheet frame, but %q is kind image", a.ID)
		}
		return OutputRef{a.ID + ":source", SourceOutput}, nil
	case manifests.KindTileable, manifests.KindTexture:
		if pick != 0 {
			return OutputRef{}, fmt.Errorf("pick chooses a concept-art variation or a sprite-sheet frame, but %q is kind %s", a.ID, a.Kind)
		}
		return OutputRef{GenerateStage(a.ID), ImageOutput}, nil
	case manifests.KindSpriteSheet:
		n := spriteFrames(a)
		if pick >= n {
			return OutputRef{}, fmt.Errorf("pick %d, but %q has %d frames (0 to %d)", pick, a.ID, n, n-1)
		}
		return OutputRef{FrameStage(a.ID, pick, n), ImageOutput}, nil
	case manifests.KindConceptArt:
		n := conceptVariations(a)
		if pick >= n {
			return OutputRef{}, fmt.Errorf("pick %d, but %q has %d variations (0 to %d)", pick, a.ID, n, n-1)
		}
		return conceptFinal(a, pick, n), nil
	}
	return OutputRef{}, fmt.Errorf("asset %q has unknown kind %q", a.ID, a.Kind)
}

// MapImage returns the final image of an asset for a material slot or an
// atlas: a texture map (m is a map name; "" or "albedo" is the albedo),
// or, for other kinds (m must be ""), the asset's main picture: the image,
// the tileable image, a sprite-sheet's grid sheet, a concept-art's
// variation 0.
func MapImage(a *manifests.Asset, m string) (OutputRef, error) {
	if a.Kind == manifests.KindTexture {
		switch {
		case m == "" || m == manifests.MapAlbedo:
			return OutputRef{GenerateStage(a.ID), ImageOutput}, nil
		case a.Texture != nil && a.Texture.HasMap(m):
			return OutputRef{DeriveStage(a.ID), MapOutput(m)}, nil
		}
		return OutputRef{}, fmt.Errorf("texture %q does not write map %q", a.ID, m)
	}
	if m != "" {
		return OutputRef{}, fmt.Errorf("asset %q is kind %s, which has no map %q (only textures have maps)", a.ID, a.Kind, m)
	}
	switch a.Kind {
	case manifests.KindSpriteSheet:
		return OutputRef{SheetStage(a.ID), SheetOutput}, nil
	case manifests.KindConceptArt:
		return conceptFinal(a, 0, conceptVariations(a)), nil
	}
	return SourceImage(a, 0)
}

// Frames returns the final frames of a sprite-sheet (keyed, pixel-art
// processed, at frame size) in play order, and where its animation
// metadata is: what an atlas packs. Both live in the SheetStage.
func Frames(a *manifests.Asset) (frames []OutputRef, animation OutputRef, err error) {
	if a.Kind != manifests.KindSpriteSheet {
		return nil, OutputRef{}, fmt.Errorf("asset %q is kind %s, not sprite-sheet", a.ID, a.Kind)
	}
	n := spriteFrames(a)
	st := SheetStage(a.ID)
	for i := 0; i < n; i++ {
		frames = append(frames, OutputRef{st, FrameOutput(i, n)})
	}
	return frames, OutputRef{st, AnimationOutput}, nil
}

// Variations returns the final images of a concept-art asset, variation 0
// first.
func Variations(a *manifests.Asset) ([]OutputRef, error) {
	if a.Kind != manifests.KindConceptArt {
		return nil, fmt.Errorf("asset %q is kind %s, not concept-art", a.ID, a.Kind)
	}
	n := conceptVariations(a)
	out := make([]OutputRef, n)
	for k := range out {
		out[k] = conceptFinal(a, k, n)
	}
	return out, nil
}

// spriteFrames is a sprite-sheet's frame count (at least 1).
func spriteFrames(a *manifests.Asset) int {
	if a.Sprite == nil {
		return 1
	}
	n := a.Sprite.Frames
	if len(a.Sprite.FramePrompts) > 0 {
		n = len(a.Sprite.FramePrompts)
	}
	return max(n, 1)
}

// conceptVariations is a concept-art asset's variation count (at least 1).
func conceptVariations(a *manifests.Asset) int {
	if a.Concept == nil {
		return 1
	}
	return max(a.Concept.Variations, 1)
}

// conceptFinal is the last stage of variation k: its hires pass when
// there is one.
func conceptFinal(a *manifests.Asset, k, n int) OutputRef {
	if a.Concept != nil && a.Concept.Hires != nil {
		return OutputRef{HiresStage(a.ID, k, n), ImageOutput}
	}
	return OutputRef{VariationStage(a.ID, k, n), ImageOutput}
}
