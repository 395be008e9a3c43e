package atlas

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/kiln-dev/kiln/exporters/atlas/internal/benchset"
)

// BenchmarkPack packs each benchmark set (see internal/benchset) with the
// default search and reports the occupancy (sprite area ÷ page area) and
// page count. go run ./exporters/atlas/bench compares the same sets with
// the npm peers.
func BenchmarkPack(b *testing.B) {
	for _, set := range benchset.All() {
		sizes := make([]image.Point, len(set.Sizes))
		for i, wh := range set.Sizes {
			sizes[i] = image.Pt(wh[0], wh[1])
		}
		s := Settings{MaxSize: set.MaxSize, Padding: set.Padding, Border: set.Border}
		b.Run(set.Name, func(b *testing.B) {
			var l *Layout
			for b.Loop() {
				var err error
				if l, err = PackRects(context.Background(), sizes, s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(l.Occupancy(sizes), "occupancy")
			b.ReportMetric(float64(len(l.Pages)), "pages")
		})
	}
}

// BenchmarkPackSprites runs the whole Pack (trim, dedupe, pack, compose)
// on 300 noisy sprites.
func BenchmarkPackSprites(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	sprites := make([]Sprite, 300)
	for i := range sprites {
		img := image.NewNRGBA(image.Rect(0, 0, 8+r.IntN(56), 8+r.IntN(56)))
		for y := 2; y < img.Rect.Dy()-2; y++ {
			for x := 2; x < img.Rect.Dx()-2; x++ {
				img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), uint8(i), 255})
			}
		}
		sprites[i] = Sprite{Name: fmt.Sprintf("s%03d", i), Image: img}
	}
	s := Settings{Padding: 2, Extrude: 1, Dedupe: true}
	var a *Atlas
	for b.Loop() {
		var err error
		if a, err = Pack(context.Background(), sprites, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(a.Occupancy(), "occupancy")
}
