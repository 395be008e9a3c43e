package imageops

import "math"

// percentiles returns approximately the p-quantiles (p in [0,1]) of v,
// from a fine histogram between v's minimum and maximum: O(len(v)) and
// exact to 1/histBins of the range, plenty for contrast stretching. It
// also returns the exact minimum and maximum.
func percentiles(v []float32, ps ...float64) (qs []float64, lo, hi float64) {
	qs = make([]float64, len(ps))
	if len(v) == 0 {
		return qs, 0, 0
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		f := float64(x)
		if f < lo {
			lo = f
		}
		if f > hi {
			hi = f
		}
	}
	if !(hi > lo) {
		for i := range qs {
			qs[i] = lo
		}
		return qs, lo, hi
	}
	const histBins = 4096
	var hist [histBins]int
	scale := histBins / (hi - lo)
	for _, x := range v {
		b := int((float64(x) - lo) * scale)
		if b >= histBins {
			b = histBins - 1
		} else if b < 0 {
			b = 0
		}
		hist[b]++
	}
	for i, p := range ps {
		target := p * float64(len(v))
		cum := 0
		b := 0
		for ; b < histBins; b++ {
			cum += hist[b]
			if float64(cum) >= target {
				break
			}
		}
		// Bin b holds the quantile; use its centre (its edges for the
		// extremes, so p=0 and p=1 give the exact range).
		switch {
		case p <= 0:
			qs[i] = lo
		case p >= 1:
			qs[i] = hi
		default:
			qs[i] = lo + (float64(min(b, histBins-1))+0.5)/scale
		}
	}
	return qs, lo, hi
}

// stretch maps v linearly so that lo→outLo and hi→outHi, clamping to the
// output range. When hi <= lo every value becomes mid.
func stretch(v []float32, lo, hi, outLo, outHi, mid float64) {
	if !(hi-lo > 1e-9) {
		for i := range v {
			v[i] = float32(mid)
		}
		return
	}
	k := (outHi - outLo) / (hi - lo)
	for i, x := range v {
		t := outLo + (float64(x)-lo)*k
		if t < outLo {
			t = outLo
		} else if t > outHi {
			t = outHi
		}
		v[i] = float32(t)
	}
}
