package atlas

import (
	"context"
	"fmt"
	"math"

	"github.com/kiln-dev/kiln/generators/imageops"
)

// This file makes the sprites of a scaled variant of an atlas
// (Settings.Scale): each sprite is resampled on its own and the variant is
// packed afresh, rather than the full-size pages being shrunk, so that
// neighbouring sprites never blur into each other and every rectangle
// stays on whole pixels.

// scaleSprites returns copies of sprites resized by factor: Catmull-Rom
// (filtered with premultiplied alpha), or nearest-neighbour when nearest is
// set and 1/factor is a whole number, so pixel art stays crisp. Sizes round
// to the nearest pixel (at least 1); 9-slice borders are scaled down and
// kept inside the new size; pivots are fractions and stay as they are.
func scaleSprites(ctx context.Context, sprites []Sprite, factor float64, nearest bool) ([]Sprite, error) {
	out := make([]Sprite, len(sprites))
	step := math.Round(1 / factor)
	whole := math.Abs(1/factor-step) < 1e-9
	for i, sp := range sprites {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := sp.Image.Bounds()
		w := max(1, int(math.Round(float64(b.Dx())*factor)))
		h := max(1, int(math.Round(float64(b.Dy())*factor)))
		f := imageops.FromImage(sp.Image)
		var err error
		if nearest && whole && b.Dx()%int(step) == 0 && b.Dy()%int(step) == 0 {
			f, err = imageops.DownscaleNearest(f, int(step))
		} else {
			f, err = imageops.Resize(f, w, h, imageops.CatmullRom, imageops.Edges{})
		}
		if err != nil {
			return nil, fmt.Errorf("scale sprite %q by %v: %w", sp.Name, factor, err)
		}
		sp.Image = f.NRGBA()
		if sp.Slice != nil {
			s := scaleSlice(*sp.Slice, factor, sp.Image.Bounds().Dx(), sp.Image.Bounds().Dy())
			sp.Slice = &s
		}
		out[i] = sp
	}
	return out, nil
}

// scaleSlice scales borders down (rounding towards zero) and shrinks the
// larger of each pair until a middle of at least one pixel is left.
func scaleSlice(b [4]int, factor float64, w, h int) [4]int {
	var s [4]int
	for i, v := range b {
		s[i] = int(float64(v) * factor)
	}
	for s[0]+s[2] >= w {
		if s[0] >= s[2] {
			s[0]--
		} else {
			s[2]--
		}
	}
	for s[1]+s[3] >= h {
		if s[1] >= s[3] {
			s[1]--
		} else {
			s[3]--
		}
	}
	return s
}
