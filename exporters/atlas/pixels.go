package atlas

import (
	"bytes"
	"hash/maphash"
	"image"
	"image/color"
)

// toNRGBA returns img as an NRGBA image whose bounds start at (0, 0). An
// *image.NRGBA is copied only if its bounds do not start at the origin or
// its rows are not contiguous; the result must not be modified.
func toNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	if n, ok := img.(*image.NRGBA); ok && b.Min == (image.Point{}) && n.Stride == 4*b.Dx() {
		return n
	}
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	switch src := img.(type) {
	case *image.NRGBA:
		for y := 0; y < b.Dy(); y++ {
			i := src.PixOffset(b.Min.X, b.Min.Y+y)
			copy(out.Pix[y*out.Stride:y*out.Stride+4*b.Dx()], src.Pix[i:i+4*b.Dx()])
		}
	default:
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				i := y*out.Stride + 4*x
				out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = c.R, c.G, c.B, c.A
			}
		}
	}
	return out
}

// trimRect returns the smallest rectangle holding every pixel whose alpha
// is above threshold. A sprite with no such pixel keeps its top-left pixel,
// so every frame still has a 1×1 region.
func trimRect(img *image.NRGBA, threshold int) image.Rectangle {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if threshold < 0 {
		return image.Rect(0, 0, w, h)
	}
	opaque := func(x, y int) bool { return int(img.Pix[y*img.Stride+4*x+3]) > threshold }
	rowHas := func(y int) bool {
		for x := 0; x < w; x++ {
			if opaque(x, y) {
				return true
			}
		}
		return false
	}
	top := 0
	for top < h && !rowHas(top) {
		top++
	}
	if top == h {
		return image.Rect(0, 0, 1, 1)
	}
	bottom := h
	for !rowHas(bottom - 1) {
		bottom--
	}
	colHas := func(x int) bool {
		for y := top; y < bottom; y++ {
			if opaque(x, y) {
				return true
			}
		}
		return false
	}
	left := 0
	for !colHas(left) {
		left++
	}
	right := w
	for !colHas(right - 1) {
		right--
	}
	return image.Rect(left, top, right, bottom)
}

// crop copies r out of img into a new image at the origin.
func crop(img *image.NRGBA, r image.Rectangle) *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := 0; y < r.Dy(); y++ {
		i := (r.Min.Y+y)*img.Stride + 4*r.Min.X
		copy(out.Pix[y*out.Stride:(y+1)*out.Stride], img.Pix[i:i+4*r.Dx()])
	}
	return out
}

// premultiply multiplies colour by alpha in place, rounding to nearest.
func premultiply(img *image.NRGBA) {
	p := img.Pix
	for i := 0; i+3 < len(p); i += 4 {
		a := uint32(p[i+3])
		if a == 255 {
			continue
		}
		p[i] = uint8((uint32(p[i])*a + 127) / 255)
		p[i+1] = uint8((uint32(p[i+1])*a + 127) / 255)
		p[i+2] = uint8((uint32(p[i+2])*a + 127) / 255)
	}
}

// samePixels reports whether a and b have the same size and bytes.
func samePixels(a, b *image.NRGBA) bool {
	return a.Rect.Eq(b.Rect) && bytes.Equal(a.Pix, b.Pix)
}

// pixelHash hashes an image's size and pixels for de-duplication (equal
// hashes are confirmed with samePixels).
func pixelHash(seed maphash.Seed, img *image.NRGBA) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var dims [8]byte
	w, ht := img.Rect.Dx(), img.Rect.Dy()
	dims[0], dims[1], dims[2], dims[3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
	dims[4], dims[5], dims[6], dims[7] = byte(ht), byte(ht>>8), byte(ht>>16), byte(ht>>24)
	h.Write(dims[:])
	h.Write(img.Pix)
	return h.Sum64()
}

// blit draws src onto page with its top-left stored pixel at (x, y),
// rotated by 90° (clockwise or not) when rot is set, and then repeats the
// drawn rectangle's edge pixels e times around it.
func blit(page, src *image.NRGBA, x, y int, rot, clockwise bool, e int) {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	pw, ph := w, h
	if rot {
		pw, ph = h, w
	}
	for v := 0; v < h; v++ {
		row := src.Pix[v*src.Stride : v*src.Stride+4*w]
		if !rot {
			copy(page.Pix[(y+v)*page.Stride+4*x:], row)
			continue
		}
		for u := 0; u < w; u++ {
			// Clockwise: the top row becomes the right column, read
			// top to bottom. Counter-clockwise: it becomes the left
			// column, read bottom to top.
			dx, dy := h-1-v, u
			if !clockwise {
				dx, dy = v, w-1-u
			}
			copy(page.Pix[(y+dy)*page.Stride+4*(x+dx):][:4], row[4*u:4*u+4])
		}
	}
	if e == 0 {
		return
	}
	// Rows first (top and bottom edges copied outwards), then whole
	// columns including the new rows, which fills the corners with the
	// corner pixels.
	rowBytes := 4 * pw
	top := page.Pix[y*page.Stride+4*x:][:rowBytes]
	bottom := page.Pix[(y+ph-1)*page.Stride+4*x:][:rowBytes]
	for k := 1; k <= e; k++ {
		copy(page.Pix[(y-k)*page.Stride+4*x:][:rowBytes], top)
		copy(page.Pix[(y+ph-1+k)*page.Stride+4*x:][:rowBytes], bottom)
	}
	for yy := y - e; yy < y+ph+e; yy++ {
		row := page.Pix[yy*page.Stride:]
		left := row[4*x : 4*x+4]
		right := row[4*(x+pw-1) : 4*(x+pw-1)+4]
		for k := 1; k <= e; k++ {
			copy(row[4*(x-k):4*(x-k)+4], left)
			copy(row[4*(x+pw-1+k):4*(x+pw-1+k)+4], right)
		}
	}
}
