package atlas

import (
	"context"
	"image"
	"image/color"
	"testing"
)

func TestPackScale(t *testing.T) {
	// A 20×12 opaque sprite with a 4-pixel transparent margin on the left
	// and 9-slice borders on the other.
	img := image.NewNRGBA(image.Rect(0, 0, 24, 12))
	for y := range 12 {
		for x := 4; x < 24; x++ {
			img.SetNRGBA(x, y, color.NRGBA{200, uint8(x * 10), 40, 255})
		}
	}
	box := solidSprite(10, 10, color.NRGBA{10, 20, 30, 255})
	sprites := []Sprite{
		{Name: "bar", Image: img, Pivot: &[2]float64{0.25, 1}},
		{Name: "box", Image: box, Slice: &[4]int{3, 3, 3, 4}},
	}
	tests := []struct {
		s             Settings
		barW, barSrcW int
		boxSlice      [4]int
	}{
		{Settings{}, 20, 24, [4]int{3, 3, 3, 4}},
		// Catmull-Rom spreads the opaque edge one pixel into the margin;
		// nearest-neighbour keeps it sharp.
		{Settings{Scale: 0.5}, 11, 12, [4]int{1, 1, 1, 2}},
		{Settings{Scale: 0.5, Filter: FilterNearest}, 10, 12, [4]int{1, 1, 1, 2}},
		{Settings{Scale: 0.25}, 6, 6, [4]int{0, 0, 0, 1}},
	}
	for _, tt := range tests {
		a, err := Pack(context.Background(), sprites, tt.s)
		if err != nil {
			t.Fatal(err)
		}
		bar, bx := &a.Frames[0], &a.Frames[1]
		if bar.W != tt.barW || bar.SourceW != tt.barSrcW || bar.Pivot != [2]float64{0.25, 1} {
			t.Errorf("scale %v: bar %d wide of %d, pivot %v; want %d of %d, pivot [0.25 1]", tt.s.Scale, bar.W, bar.SourceW, bar.Pivot, tt.barW, tt.barSrcW)
		}
		if bx.Trimmed() || !bx.HasSlice || bx.Slice != tt.boxSlice {
			t.Errorf("scale %v: box trimmed %v, slice %v (set %v); want untrimmed with %v", tt.s.Scale, bx.Trimmed(), bx.Slice, bx.HasSlice, tt.boxSlice)
		}
	}
}

func TestScaleSliceKeepsAMiddle(t *testing.T) {
	for _, tt := range []struct {
		b      [4]int
		factor float64
		w, h   int
		want   [4]int
	}{
		{[4]int{4, 4, 5, 5}, 0.5, 5, 5, [4]int{2, 2, 2, 2}},
		{[4]int{3, 0, 6, 0}, 0.5, 5, 5, [4]int{1, 0, 3, 0}},
		{[4]int{1, 1, 1, 1}, 0.1, 1, 1, [4]int{0, 0, 0, 0}},
	} {
		got := scaleSlice(tt.b, tt.factor, tt.w, tt.h)
		if got != tt.want || got[0]+got[2] >= tt.w || got[1]+got[3] >= tt.h {
			t.Errorf("scaleSlice(%v, %v, %d×%d) = %v, want %v", tt.b, tt.factor, tt.w, tt.h, got, tt.want)
		}
	}
}
