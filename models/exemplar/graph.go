package exemplar

import (
	"fmt"
	"math"

	"github.com/kiln-dev/kiln/models/onnx"
)

// Graph input and output names of the denoiser.
const (
	// InputSample is the noisy image, float32 [1, 3, H, W], in the
	// variance-preserving form x = sqrt(ᾱ)·x0 + sqrt(1-ᾱ)·ε with x0 in
	// [-1, 1].
	InputSample = "sample"
	// InputAlphaBar is the signal level ᾱ of the sample, float32 [1].
	InputAlphaBar = "alpha_bar"
	// OutputSample is the predicted clean image x0, float32 [1, 3, H, W].
	OutputSample = "x0"
)

// graphSpec is everything one denoiser graph bakes in.
type graphSpec struct {
	h, w  int
	tile  Tiling
	bank  *patchBank
	chunk int // pixels per softmax chunk
	// extra > 0 adds extra columns to each pixel's features (extraPx,
	// [pixels][extra]) and rows to the bank (extraRows, [extra][n]): their
	// product, scaled like the patch match by sqrt(ᾱ)/(1−ᾱ) so that it
	// keeps its weight as the noise falls, is added to the logits: a
	// per-pixel bias of each bank patch (a layout or an object's
	// positions).
	extra     int
	extraPx   []float32
	extraRows []float32
	// The bank's down > 1 runs the comparison on the image
	// average-pooled by down (the bank then holds patches of exemplars
	// pooled the same way); each coarse pixel predicts the full-resolution
	// down×down block under it. h and w must be multiples of down.
}

// chunkPixels picks how many pixels share one [pixels, bank] softmax
// block: about 4 Mi logits (16 MiB), which bounds ONNX Runtime's working
// memory whatever the image size while keeping every MatMul large.
func chunkPixels(n, pixels int) int {
	c := max(256, (4<<20)/max(n, 1))
	return min(c, pixels)
}

// buildGraph builds the equivariant local score denoiser for one patch
// size and image size:
//
//	xp     = pad(sample, p/2)             wrap-around (Slice+Concat of the
//	                                      borders) on tiled axes, reflection
//	                                      on the others
//	f      = Conv(xp, proj)               [1, d, H, W]: each pixel's patch,
//	                                      projected (identity kernels when
//	                                      there is no reduction)
//	F      = f as [H·W, d] · sqrt(ᾱ)/(1-ᾱ)
//	logits = F·bank − ᾱ/(2(1-ᾱ))·‖e‖²     [H·W, n], per chunk of pixels
//	w      = Softmax(logits)              over the bank
//	x0     = w·centres                    [H·W, 3] → [1, 3, H, W]
//
// The logits are −‖x − sqrt(ᾱ)·e‖²/(2(1−ᾱ)) without the ‖x‖² term, which
// is the same for every bank patch and cancels in the softmax.
func buildGraph(s graphSpec) (*onnx.Model, error) {
	bk := s.bank
	p, r, d, n := bk.p, bk.p/2, bk.d, bk.n
	if s.h < 1 || s.w < 1 {
		return nil, fmt.Errorf("image size %dx%d", s.w, s.h)
	}
	d0 := max(bk.down, 1)
	if s.h%d0 != 0 || s.w%d0 != 0 {
		return nil, fmt.Errorf("image size %dx%d is not a multiple of the downscale %d", s.w, s.h, d0)
	}
	lh, lw := s.h/d0, s.w/d0
	if d0 > 1 && (lh < 2 || lw < 2) {
		return nil, fmt.Errorf("image size %dx%d is too small to scale down by %d", s.w, s.h, d0)
	}
	if !s.tile.X && r > lw-1 || !s.tile.Y && r > lh-1 || r > lw || r > lh {
		return nil, fmt.Errorf("image %dx%d is too small for %d×%d patches at 1/%d scale: make it at least %d pixels on each side", s.w, s.h, p, p, d0, (r+1)*d0)
	}
	pixels := lh * lw
	chunk := s.chunk
	if chunk <= 0 || chunk > pixels {
		chunk = pixels
	}
	b := onnx.NewBuilder(fmt.Sprintf("kiln_exemplar_p%d_d%d", p, d0))
	x := b.Input(InputSample, onnx.Float, 1, 3, s.h, s.w)
	ab := b.Input(InputAlphaBar, onnx.Float, 1)

	// Noise-level coefficients. ᾱ is kept inside (0, 1) so neither
	// coefficient divides by zero. Average pooling by d divides the noise
	// variance by d², which the coefficients take into account: the
	// weights are then the exact posterior given the pooled patch.
	abc := b.Clip(ab, b.Scalar(1e-6), b.Scalar(1-1e-6))
	om := b.Div(b.Sub(b.Scalar(1), abc), b.Scalar(float32(d0*d0)))
	k1 := b.Div(b.Sqrt(abc), om)
	k2 := b.Div(abc, b.Mul(b.Scalar(2), om))

	if d0 > 1 {
		x = b.Op("AveragePool", []string{x},
			onnx.IntsAttr("kernel_shape", int64(d0), int64(d0)), onnx.IntsAttr("strides", int64(d0), int64(d0)))
	}
	xp := pad(b, x, 3, r, lw, s.tile.X)
	xp = pad(b, xp, 2, r, lh, s.tile.Y)
	w := b.Weight("proj", []int64{int64(d), 3, int64(p), int64(p)}, bk.proj)
	f := b.Conv(xp, w, "", onnx.ConvOpts{})
	f = b.Reshape(f, int64(d), int64(pixels))
	f = b.Transpose(f, 1, 0)
	feat, rows := bk.feat, d
	if s.extra > 0 {
		if len(s.extraPx) != pixels*s.extra || len(s.extraRows) != n*s.extra {
			return nil, fmt.Errorf("extra features: %d and %d values, want %d and %d", len(s.extraPx), len(s.extraRows), pixels*s.extra, n*s.extra)
		}
		xw := b.Weight("extra_features", []int64{int64(pixels), int64(s.extra)}, s.extraPx)
		f = b.Concat(1, f, xw)
		feat = append(append(make([]float32, 0, len(feat)+len(s.extraRows)), feat...), s.extraRows...)
		rows += s.extra
	}
	f = b.Mul(f, k1)

	bank := b.Weight("bank", []int64{int64(rows), int64(n)}, feat)
	norms := b.Weight("bank_sqnorm", []int64{int64(n)}, bk.sqnorm)
	bias := b.Mul(b.Neg(k2), norms)
	cw := int64(3 * d0 * d0)
	centres := b.Weight("centres", []int64{int64(n), cw}, bk.centres)

	var parts []string
	if chunk >= pixels {
		parts = []string{f}
	} else {
		var sizes []int64
		for left := pixels; left > 0; left -= chunk {
			sizes = append(sizes, int64(min(chunk, left)))
		}
		parts = b.Split(f, 0, sizes...)
	}
	outs := make([]string, len(parts))
	for i, part := range parts {
		logits := b.Gemm(part, bank, bias, 1, 1, false, false)
		wts := b.Softmax(logits, 1)
		outs[i] = b.MatMul(wts, centres)
	}
	y := outs[0]
	if len(outs) > 1 {
		y = b.Concat(0, outs...)
	}
	y = b.Transpose(y, 1, 0)
	y = b.Reshape(y, 1, cw, int64(lh), int64(lw))
	if d0 > 1 {
		// Each coarse pixel's [c][i][j] block goes back in place.
		y = b.Op("DepthToSpace", []string{y}, onnx.IntAttr("blocksize", int64(d0)), onnx.StringAttr("mode", "CRD"))
	}
	b.Output(y, OutputSample, onnx.Float, 1, 3, s.h, s.w)
	return b.Model()
}

// pad extends x by r pixels on both sides of axis (of length size): with
// the opposite border when wrap is set, so the Conv sees the image as one
// period of an endless tiling and its output tiles; else with the
// reflection of the border (without repeating the edge pixel), which keeps
// the local statistics that the patch comparison relies on.
func pad(b *onnx.Builder, x string, axis int64, r, size int, wrap bool) string {
	if r == 0 {
		return x
	}
	axes := []int64{axis}
	var lo, hi string
	if wrap {
		lo = b.Slice(x, []int64{int64(size - r)}, []int64{int64(size)}, axes, nil)
		hi = b.Slice(x, []int64{0}, []int64{int64(r)}, axes, nil)
	} else {
		// x[r], x[r-1], ..., x[1] and x[size-2], ..., x[size-1-r].
		lo = b.Slice(x, []int64{int64(r)}, []int64{0}, axes, []int64{-1})
		end := int64(size - 2 - r)
		if end < 0 {
			end = math.MinInt64 // through index 0
		}
		hi = b.Slice(x, []int64{int64(size - 2)}, []int64{end}, axes, []int64{-1})
	}
	return b.Concat(axis, lo, x, hi)
}
