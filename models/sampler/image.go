package sampler

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"math"
	"runtime"
	"sync"
)

// ImageToTensor converts an image into the VAE encoder's input: a
// [1, 3, H, W] tensor with values in [-1, 1]. Alpha is ignored, as
// diffusers' image processor converts images to RGB first.
func ImageToTensor(img image.Image) Tensor {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	t := Tensor{Shape: []int64{1, 3, int64(h), int64(w)}, Data: make([]float32, 3*w*h)}
	plane := w * h
	put := func(i int, r, g, bl uint8) {
		t.Data[i] = float32(r)/127.5 - 1
		t.Data[plane+i] = float32(g)/127.5 - 1
		t.Data[2*plane+i] = float32(bl)/127.5 - 1
	}
	if n, ok := img.(*image.NRGBA); ok {
		for y := 0; y < h; y++ {
			row := n.Pix[(y+b.Min.Y-n.Rect.Min.Y)*n.Stride+(b.Min.X-n.Rect.Min.X)*4:]
			for x := 0; x < w; x++ {
				put(y*w+x, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
		return t
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			put(y*w+x, c.R, c.G, c.B)
		}
	}
	return t
}

// TensorToImages converts decoder output, [batch, 3, H, W] with values in
// [-1, 1], into opaque images, as diffusers' postprocessing does:
// (x/2 + 0.5) clamped to [0, 1], times 255, rounded half to even.
// Large images are converted by several goroutines, one band of rows
// each, because this pass runs while ONNX Runtime's threads sit idle.
func TensorToImages(t Tensor) ([]*image.NRGBA, error) {
	if len(t.Shape) != 4 || t.Shape[1] != 3 || t.Shape[0] < 1 || t.Shape[2] < 1 || t.Shape[3] < 1 {
		return nil, fmt.Errorf("decoded images have shape %v, want [batch, 3, height, width]", t.Shape)
	}
	n, h, w := int(t.Shape[0]), int(t.Shape[2]), int(t.Shape[3])
	if len(t.Data) != n*3*h*w {
		return nil, fmt.Errorf("decoded images: %d values for shape %v", len(t.Data), t.Shape)
	}
	out := make([]*image.NRGBA, n)
	plane := h * w
	// Bands of at least minBand pixels: below that, starting a goroutine
	// costs more than it saves.
	const minBand = 1 << 16
	bands := min(runtime.GOMAXPROCS(0), max(1, plane/minBand))
	for k := range out {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		src := t.Data[k*3*plane : (k+1)*3*plane]
		r, g, bl := src[:plane], src[plane:2*plane], src[2*plane:]
		if bands == 1 {
			planesToPix(img.Pix, r, g, bl)
		} else {
			band := func(b int) {
				lo, hi := b*plane/bands, (b+1)*plane/bands
				planesToPix(img.Pix[4*lo:4*hi], r[lo:hi], g[lo:hi], bl[lo:hi])
			}
			var wg sync.WaitGroup
			for b := 1; b < bands; b++ {
				wg.Go(func() { band(b) })
			}
			band(0)
			wg.Wait()
		}
		out[k] = img
	}
	return out, nil
}

// planesToPix interleaves three planes of decoder values into opaque
// NRGBA pixels, one 32-bit store per pixel.
func planesToPix(pix []uint8, r, g, b []float32) {
	pix = pix[:4*len(r)]
	g, b = g[:len(r)], b[:len(r)]
	for i, rv := range r {
		px := uint32(toByte(rv)) | uint32(toByte(g[i]))<<8 | uint32(toByte(b[i]))<<16 | 0xff<<24
		binary.LittleEndian.PutUint32(pix[4*i:], px)
	}
}

// toByte maps a decoder value to a byte: x = v/2 + 0.5 clamped to [0, 1]
// (NaN to 0), then x·255 rounded half to even. The product is a float32,
// as numpy computes it.
func toByte(v float32) uint8 {
	x := v*0.5 + 0.5
	if x > 1 {
		x = 1
	}
	if !(x > 0) { // also NaN
		x = 0
	}
	// x·255 is below 2^8, so adding 2^23 in float32 leaves no fraction
	// bits: the sum rounds the product to an integer, half to even, and
	// its low significand bits are that integer. The explicit conversion
	// keeps the compiler from fusing or widening the product.
	const magic = 1 << 23
	return uint8(math.Float32bits(float32(x*255) + magic))
}

// GuidanceEmbedding is the LCM UNet's timestep_cond for guidance scale
// guidance: the sinusoidal embedding (sines, then cosines; a zero pad for
// odd dim) of w = (guidance - 1) · 1000, as diffusers'
// get_guidance_scale_embedding computes it.
func GuidanceEmbedding(guidance float64, dim int) []float32 {
	out := make([]float32, dim)
	half := dim / 2
	if half == 0 {
		return out
	}
	// Each intermediate is rounded to float32 as diffusers' float32
	// tensors round it: the arguments reach thousands of radians, where
	// one float32 step of the argument moves sin and cos by 1e-4.
	w := float32(guidance-1) * 1000
	scale := float32(math.Log(10000))
	if half > 1 {
		scale /= float32(half - 1)
	}
	for i := 0; i < half; i++ {
		f := float32(math.Exp(float64(float32(i) * -scale)))
		v := float64(w * f)
		out[i] = float32(math.Sin(v))
		out[half+i] = float32(math.Cos(v))
	}
	return out
}
