package exemplar

import (
	"image"
	"image/color"
	"math"
	"sort"
)

// Objects: exemplars that are sprites.
//
// An exemplar whose border is transparent, or one flat colour (a sprite on
// a key colour), shows one object, not a surface. Patch mosaics of it
// would tile copies of the object across the frame, in new places every
// frame. So the model treats such exemplars as objects: the background
// is made exactly flat (transparent pixels become ObjectBackground), and
// every bank patch remembers where it lies relative to the centre of its
// exemplar's object. The denoiser then adds −‖p − e‖²/(2s²) to the logit
// of a bank patch at position e for the pixel at position p relative to
// the frame's centre, which factors into three extra feature columns
// (p_x, p_y, 1) and bank rows (e_x/s², e_y/s², −‖e‖²/(2s²)): each pixel
// prefers the patches from its own place in the object. The frame then
// holds one object, centred, at the exemplar's pixel size, its details
// varied by the noise, and it stays in place from frame to frame.

// objectBackground is the flat colour the transparent pixels of a sprite
// exemplar become: magenta, kiln's default key colour, so a sprite-sheet
// with background: key keys it out again.
func objectBackground() color.NRGBA { return color.NRGBA{255, 0, 255, 255} }

// objectInfo is what the model knows of an object exemplar.
type objectInfo struct {
	cx, cy float64 // the centre of the object's bounding box, in pixels
	size   float64 // the larger side of that box
	key    [3]float64
}

// keyDistance is how far (Euclidean, 0..255 RGB) a pixel may lie from the
// border's colour to count as background.
const keyDistance = 48

// detectObject reports whether img is a sprite (its border transparent,
// or all of one colour, with an object inside covering 1..90% of it) and
// returns the image with a flat background, and where the object is.
func detectObject(img *image.NRGBA) (*image.NRGBA, objectInfo, bool) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if w < 8 || h < 8 {
		return nil, objectInfo{}, false
	}
	px := func(x, y int) []uint8 { i := y*img.Stride + 4*x; return img.Pix[i : i+4] }
	var border [][]uint8
	for x := 0; x < w; x++ {
		border = append(border, px(x, 0), px(x, h-1))
	}
	for y := 1; y < h-1; y++ {
		border = append(border, px(0, y), px(w-1, y))
	}
	clear := 0
	for _, p := range border {
		if p[3] < 128 {
			clear++
		}
	}
	var bg [3]float64
	transparent := clear*10 >= len(border)*8
	if !transparent {
		// The key colour: the border's per-channel median, which most
		// of the border must be close to.
		for c := 0; c < 3; c++ {
			vs := make([]int, len(border))
			for i, p := range border {
				vs[i] = int(p[c])
			}
			sort.Ints(vs)
			bg[c] = float64(vs[len(vs)/2])
		}
		near := 0
		for _, p := range border {
			if p[3] >= 128 && colourDist(p, bg) <= keyDistance {
				near++
			}
		}
		if near*10 < len(border)*9 {
			return nil, objectInfo{}, false
		}
	}
	isObject := func(p []uint8) bool {
		if transparent {
			return p[3] >= 128
		}
		return p[3] >= 128 && colourDist(p, bg) > keyDistance
	}
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	key := objectBackground()
	if !transparent {
		key = color.NRGBA{uint8(bg[0]), uint8(bg[1]), uint8(bg[2]), 255}
	}
	x0, y0, x1, y1, count := w, h, -1, -1, 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := px(x, y)
			o := out.Pix[y*out.Stride+4*x:]
			if !isObject(p) {
				o[0], o[1], o[2], o[3] = key.R, key.G, key.B, 255
				continue
			}
			count++
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			// Partly transparent edges are laid over the key colour.
			a := float64(p[3]) / 255
			for c := 0; c < 3; c++ {
				o[c] = uint8(math.Round(float64(p[c])*a + float64([]uint8{key.R, key.G, key.B}[c])*(1-a)))
			}
			o[3] = 255
		}
	}
	if count*100 < w*h || count*10 > w*h*9 {
		return nil, objectInfo{}, false
	}
	info := objectInfo{cx: float64(x0+x1) / 2, cy: float64(y0+y1) / 2, size: float64(max(x1-x0, y1-y0) + 1),
		key: [3]float64{float64(key.R), float64(key.G), float64(key.B)}}
	return out, info, true
}

func colourDist(p []uint8, c [3]float64) float64 {
	dr, dg, db := float64(p[0])-c[0], float64(p[1])-c[1], float64(p[2])-c[2]
	return math.Sqrt(dr*dr + dg*dg + db*db)
}

// objectSpread is the width s of the positional preference, as a fraction
// of the object's size (at least 1 pixel): small enough that each part
// of the object stays where it is, large enough that the noise still
// varies its details.
const objectSpread = 0.02

// objectFeatures returns the extra pixel features (p_x, p_y, 1) of the
// lh×lw grid of a level pooled by down on a w×h image, positions in
// pixels from the frame's centre, and the bank's extra rows for the
// positional preference (see the comment at the top of this file).
func (m *Model) objectFeatures(bk *patchBank, w, h, down, lw, lh int) (px, rows []float32) {
	px = make([]float32, lw*lh*3)
	for i := 0; i < lh; i++ {
		y := float64(i*down) + float64(down-1)/2 - float64(h-1)/2
		for j := 0; j < lw; j++ {
			x := float64(j*down) + float64(down-1)/2 - float64(w-1)/2
			px[(i*lw+j)*3], px[(i*lw+j)*3+1], px[(i*lw+j)*3+2] = float32(x), float32(y), 1
		}
	}
	n := bk.n
	rows = make([]float32, 3*n)
	for i, src := range bk.src {
		o := m.objects[src]
		s := math.Max(1, objectSpread*o.size)
		inv := 1 / (s * s)
		ex := float64(bk.cx[i]) - o.cx
		ey := float64(bk.cy[i]) - o.cy
		rows[i], rows[n+i], rows[2*n+i] = float32(ex*inv), float32(ey*inv), float32(-(ex*ex+ey*ey)*inv/2)
	}
	return px, rows
}
