package imageops

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Float is a float32 image with C interleaved channels per pixel, stored row
// by row: the value of channel c at (x, y) is Pix[(y*W+x)*C+c]. C is 1
// (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA, not premultiplied). Values
// are nominally in [0,1].
type Float struct {
	W, H, C int
	Pix     []float32
}

// NewFloat returns a zeroed w×h image with c channels. Like make with a
// negative length, it panics on a negative size or a channel count outside
// 1-4: those are programming errors, never input errors.
func NewFloat(w, h, c int) *Float {
	if w < 0 || h < 0 || c < 1 || c > 4 {
		panic(fmt.Sprintf("imageops: invalid image shape %dx%dx%d", w, h, c))
	}
	return &Float{W: w, H: h, C: c, Pix: make([]float32, w*h*c)}
}

// At returns channel c of the pixel at (x, y).
func (f *Float) At(x, y, c int) float32 { return f.Pix[(y*f.W+x)*f.C+c] }

// Set sets channel c of the pixel at (x, y).
func (f *Float) Set(x, y, c int, v float32) { f.Pix[(y*f.W+x)*f.C+c] = v }

// Clone returns a deep copy of f.
func (f *Float) Clone() *Float {
	g := &Float{W: f.W, H: f.H, C: f.C, Pix: make([]float32, len(f.Pix))}
	copy(g.Pix, f.Pix)
	return g
}

// Empty reports whether f has no pixels.
func (f *Float) Empty() bool { return f == nil || f.W <= 0 || f.H <= 0 }

// hasAlpha reports whether the last channel is alpha.
func (f *Float) hasAlpha() bool { return f.C == 2 || f.C == 4 }

// colorChannels is the number of non-alpha channels (1 or 3).
func (f *Float) colorChannels() int {
	if f.C >= 3 {
		return 3
	}
	return 1
}

// Constant returns a w×h image whose every pixel has the given channel
// values; len(v) is the channel count.
func Constant(w, h int, v ...float32) *Float {
	f := NewFloat(w, h, len(v))
	for i := 0; i < len(f.Pix); i += f.C {
		copy(f.Pix[i:i+f.C], v)
	}
	return f
}

// Luma weights (Rec. 709) used wherever a colour becomes a single value.
const (
	lumaR = 0.2126
	lumaG = 0.7152
	lumaB = 0.0722
)

// Luminance returns a one-channel image of Rec. 709 luma computed from the
// encoded RGB values (alpha is ignored). A one- or two-channel image yields
// its gray channel.
func Luminance(f *Float) *Float {
	g := NewFloat(f.W, f.H, 1)
	n := f.W * f.H
	for i := 0; i < n; i++ {
		p := f.Pix[i*f.C:]
		if f.C >= 3 {
			g.Pix[i] = lumaR*p[0] + lumaG*p[1] + lumaB*p[2]
		} else {
			g.Pix[i] = p[0]
		}
	}
	return g
}

// Channels returns f converted to c channels: gray is replicated into RGB,
// RGB becomes gray by Rec. 709 luma, a missing alpha is 1, a dropped alpha
// is discarded. Asking for f.C returns a copy.
func Channels(f *Float, c int) *Float {
	if c < 1 || c > 4 {
		panic(fmt.Sprintf("imageops: invalid channel count %d", c))
	}
	g := NewFloat(f.W, f.H, c)
	n := f.W * f.H
	for i := 0; i < n; i++ {
		src := f.Pix[i*f.C : i*f.C+f.C]
		var r, gr, b, a float32
		a = 1
		switch f.C {
		case 1:
			r, gr, b = src[0], src[0], src[0]
		case 2:
			r, gr, b, a = src[0], src[0], src[0], src[1]
		case 3:
			r, gr, b = src[0], src[1], src[2]
		case 4:
			r, gr, b, a = src[0], src[1], src[2], src[3]
		}
		dst := g.Pix[i*c : i*c+c]
		switch c {
		case 1, 2:
			if f.C >= 3 {
				dst[0] = lumaR*r + lumaG*gr + lumaB*b
			} else {
				dst[0] = r
			}
			if c == 2 {
				dst[1] = a
			}
		case 3, 4:
			dst[0], dst[1], dst[2] = r, gr, b
			if c == 4 {
				dst[3] = a
			}
		}
	}
	return g
}

// FromPlanar builds an image from channel planes (all of channel 0, then all
// of channel 1, …), the layout of an NCHW tensor with batch 1. Values are
// copied as they are; map the model's range (often [-1,1]) before or after.
func FromPlanar(w, h, c int, planes []float32) (*Float, error) {
	if w <= 0 || h <= 0 || c < 1 || c > 4 {
		return nil, fmt.Errorf("planar image %dx%d with %d channels: want positive size and 1-4 channels", w, h, c)
	}
	if len(planes) != w*h*c {
		return nil, fmt.Errorf("planar image %dx%dx%d: got %d values, want %d", w, h, c, len(planes), w*h*c)
	}
	f := NewFloat(w, h, c)
	n := w * h
	for ch := 0; ch < c; ch++ {
		plane := planes[ch*n : ch*n+n]
		for i, v := range plane {
			f.Pix[i*c+ch] = v
		}
	}
	return f, nil
}

// Planar returns the image's channel planes (see [FromPlanar]), ready to be
// an NCHW tensor's data.
func (f *Float) Planar() []float32 {
	n := f.W * f.H
	out := make([]float32, n*f.C)
	for ch := 0; ch < f.C; ch++ {
		plane := out[ch*n : ch*n+n]
		for i := range plane {
			plane[i] = f.Pix[i*f.C+ch]
		}
	}
	return out
}

// FromImage converts img to a Float: one channel for *image.Gray and
// *image.Gray16, four (RGBA, not premultiplied) for everything else. The
// result's origin is (0, 0) whatever img's bounds are.
func FromImage(img image.Image) *Float {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	const inv8 = 1.0 / 255
	const inv16 = 1.0 / 65535
	switch m := img.(type) {
	case *image.Gray:
		f := NewFloat(w, h, 1)
		for y := 0; y < h; y++ {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X):]
			for x := 0; x < w; x++ {
				f.Pix[y*w+x] = float32(row[x]) * inv8
			}
		}
		return f
	case *image.Gray16:
		f := NewFloat(w, h, 1)
		for y := 0; y < h; y++ {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*2:]
			for x := 0; x < w; x++ {
				f.Pix[y*w+x] = float32(uint16(row[2*x])<<8|uint16(row[2*x+1])) * inv16
			}
		}
		return f
	case *image.NRGBA:
		f := NewFloat(w, h, 4)
		for y := 0; y < h; y++ {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*4:]
			out := f.Pix[y*w*4 : (y+1)*w*4]
			for i := range out {
				out[i] = float32(row[i]) * inv8
			}
		}
		return f
	case *image.RGBA:
		f := NewFloat(w, h, 4)
		for y := 0; y < h; y++ {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*4:]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4]
				o := f.Pix[(y*w+x)*4:]
				a := float32(p[3]) * inv8
				o[3] = a
				if a > 0 {
					o[0] = float32(p[0]) * inv8 / a
					o[1] = float32(p[1]) * inv8 / a
					o[2] = float32(p[2]) * inv8 / a
				}
			}
		}
		return f
	case *image.NRGBA64:
		f := NewFloat(w, h, 4)
		for y := 0; y < h; y++ {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*8:]
			out := f.Pix[y*w*4 : (y+1)*w*4]
			for i := range out {
				out[i] = float32(uint16(row[2*i])<<8|uint16(row[2*i+1])) * inv16
			}
		}
		return f
	case *image.RGBA64:
		f := NewFloat(w, h, 4)
		for y := 0; y < h; y++ {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*8:]
			for x := 0; x < w; x++ {
				var v [4]float32
				for k := range v {
					v[k] = float32(uint16(row[8*x+2*k])<<8|uint16(row[8*x+2*k+1])) * inv16
				}
				o := f.Pix[(y*w+x)*4:]
				o[3] = v[3]
				if v[3] > 0 {
					o[0], o[1], o[2] = v[0]/v[3], v[1]/v[3], v[2]/v[3]
				}
			}
		}
		return f
	case *image.Paletted:
		// Convert the palette once, then index it.
		pal := make([][4]float32, len(m.Palette))
		for i, c := range m.Palette {
			n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
			pal[i] = [4]float32{float32(n.R) * inv16, float32(n.G) * inv16, float32(n.B) * inv16, float32(n.A) * inv16}
		}
		f := NewFloat(w, h, 4)
		for y := 0; y < h; y++ {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X):]
			for x := 0; x < w; x++ {
				if int(row[x]) < len(pal) {
					copy(f.Pix[(y*w+x)*4:(y*w+x)*4+4], pal[row[x]][:])
				} // an index past the palette reads as transparent black, as image/png does
			}
		}
		return f
	}
	f := NewFloat(w, h, 4)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
			o := f.Pix[(y*w+x)*4:]
			o[0] = float32(c.R) * inv16
			o[1] = float32(c.G) * inv16
			o[2] = float32(c.B) * inv16
			o[3] = float32(c.A) * inv16
		}
	}
	return f
}

// to8 rounds a [0,1] value to 0..255, clamping out-of-range values.
func to8(v float32) uint8 {
	if !(v > 0) { // also catches NaN
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(v*255 + 0.5)
}

// to16 rounds a [0,1] value to 0..65535, clamping out-of-range values.
func to16(v float32) uint16 {
	if !(v > 0) {
		return 0
	}
	if v >= 1 {
		return 65535
	}
	return uint16(float64(v)*65535 + 0.5)
}

// NRGBA converts f to an 8-bit image: gray is replicated into RGB and a
// missing alpha is opaque. Values are clamped to [0,1] and rounded.
func (f *Float) NRGBA() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, f.W, f.H))
	n := f.W * f.H
	for i := 0; i < n; i++ {
		p := f.Pix[i*f.C : i*f.C+f.C]
		o := m.Pix[i*4 : i*4+4]
		switch f.C {
		case 1:
			v := to8(p[0])
			o[0], o[1], o[2], o[3] = v, v, v, 255
		case 2:
			v := to8(p[0])
			o[0], o[1], o[2], o[3] = v, v, v, to8(p[1])
		case 3:
			o[0], o[1], o[2], o[3] = to8(p[0]), to8(p[1]), to8(p[2]), 255
		case 4:
			o[0], o[1], o[2], o[3] = to8(p[0]), to8(p[1]), to8(p[2]), to8(p[3])
		}
	}
	return m
}

// Gray converts f to an 8-bit gray image (luma of RGB; alpha ignored).
func (f *Float) Gray() *image.Gray {
	l := f
	if f.C != 1 {
		l = Luminance(f)
	}
	m := image.NewGray(image.Rect(0, 0, f.W, f.H))
	for i, v := range l.Pix {
		m.Pix[i] = to8(v)
	}
	return m
}

// Gray16 converts f to a 16-bit gray image (luma of RGB; alpha ignored), the
// format height maps are written in so they do not band.
func (f *Float) Gray16() *image.Gray16 {
	l := f
	if f.C != 1 {
		l = Luminance(f)
	}
	m := image.NewGray16(image.Rect(0, 0, f.W, f.H))
	for i, v := range l.Pix {
		u := to16(v)
		m.Pix[2*i] = uint8(u >> 8)
		m.Pix[2*i+1] = uint8(u)
	}
	return m
}

// clamp01 limits v to [0,1], mapping NaN to 0.
func clamp01(v float64) float64 {
	if !(v > 0) {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
