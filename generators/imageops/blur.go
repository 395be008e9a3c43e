package imageops

import "math"

// BoxBlur returns f averaged over a (2rx+1)×(2ry+1) window, every channel
// independently, with edges read as e says. It costs O(pixels) whatever the
// radii: each axis is one sweep of running sums.
func BoxBlur(f *Float, rx, ry int, e Edges) *Float {
	out := f.Clone()
	if f.Empty() {
		return out
	}
	tmp := NewFloat(f.W, f.H, f.C)
	if rx > 0 {
		boxH(tmp, out, rx, e.X)
		out, tmp = tmp, out
	}
	if ry > 0 {
		boxV(tmp, out, ry, e.Y)
		out = tmp
	}
	return out
}

// Blur returns an approximation of a Gaussian blur of standard deviation
// sigma pixels: three box passes per axis whose widths are chosen so their
// variances add up to sigma² (the central limit theorem does the rest).
// sigma <= 0 returns a copy.
func Blur(f *Float, sigma float64, e Edges) *Float {
	out := f.Clone()
	if f.Empty() || !(sigma > 0) || !finite(sigma) {
		return out
	}
	radii := boxRadii(sigma, 3)
	tmp := NewFloat(f.W, f.H, f.C)
	for _, r := range radii {
		if r == 0 {
			continue
		}
		boxH(tmp, out, r, e.X)
		out, tmp = tmp, out
		boxV(tmp, out, r, e.Y)
		out, tmp = tmp, out
	}
	return out
}

// boxRadii returns n box radii whose summed variance is as close as
// possible to sigma². A box of odd width w has variance (w²-1)/12; m boxes
// of width wl and n-m of width wl+2 give
// σ² = (m(wl²-1) + (n-m)((wl+2)²-1)) / 12, solved here for m.
func boxRadii(sigma float64, n int) []int {
	ideal := math.Sqrt(12*sigma*sigma/float64(n) + 1)
	wl := int(math.Floor(ideal))
	if wl%2 == 0 {
		wl--
	}
	if wl < 1 {
		wl = 1
	}
	wu := wl + 2
	fn := float64(n)
	m := (fn*float64(wu*wu-1) - 12*sigma*sigma) / float64(wu*wu-wl*wl)
	mi := int(math.Round(m))
	mi = max(0, min(n, mi))
	radii := make([]int, n)
	for i := range radii {
		if i < mi {
			radii[i] = (wl - 1) / 2
		} else {
			radii[i] = (wu - 1) / 2
		}
	}
	return radii
}

// boxH writes into dst the horizontal box average of src with radius r.
func boxH(dst, src *Float, r int, e Edge) {
	w, c := src.W, src.C
	tab := e.table(w, r, r+1)
	inv := 1 / float64(2*r+1)
	if c == 1 {
		parallel(src.H, func(lo, hi int) {
			for y := lo; y < hi; y++ {
				row := src.Pix[y*w : (y+1)*w]
				out := dst.Pix[y*w : (y+1)*w]
				s := 0.0
				for _, j := range tab[:2*r+1] {
					s += float64(row[j])
				}
				add, sub := tab[2*r+1:], tab[:w]
				for x := range out {
					out[x] = float32(s * inv)
					s += float64(row[add[x]]) - float64(row[sub[x]])
				}
			}
		})
		return
	}
	parallel(src.H, func(lo, hi int) {
		var acc [4]float64
		for y := lo; y < hi; y++ {
			row := src.Pix[y*w*c : (y+1)*w*c]
			out := dst.Pix[y*w*c : (y+1)*w*c]
			for ch := 0; ch < c; ch++ {
				s := 0.0
				for j := 0; j < 2*r+1; j++ {
					s += float64(row[tab[j]*c+ch])
				}
				acc[ch] = s
			}
			for x := 0; x < w; x++ {
				add := tab[x+2*r+1] * c
				sub := tab[x] * c
				for ch := 0; ch < c; ch++ {
					out[x*c+ch] = float32(acc[ch] * inv)
					acc[ch] += float64(row[add+ch]) - float64(row[sub+ch])
				}
			}
		}
	})
}

// boxV writes into dst the vertical box average of src with radius r. Each
// worker owns a strip of row elements and sweeps down the rows, so memory is
// read row by row.
func boxV(dst, src *Float, r int, e Edge) {
	h := src.H
	rowLen := src.W * src.C
	tab := e.table(h, r, r+1)
	inv := 1 / float64(2*r+1)
	parallel(rowLen, func(lo, hi int) {
		acc := make([]float64, hi-lo)
		for j := 0; j < 2*r+1; j++ {
			row := src.Pix[tab[j]*rowLen:]
			for i := lo; i < hi; i++ {
				acc[i-lo] += float64(row[i])
			}
		}
		for y := 0; y < h; y++ {
			out := dst.Pix[y*rowLen:]
			add := src.Pix[tab[y+2*r+1]*rowLen:]
			sub := src.Pix[tab[y]*rowLen:]
			for i := lo; i < hi; i++ {
				a := acc[i-lo]
				out[i] = float32(a * inv)
				acc[i-lo] = a + float64(add[i]) - float64(sub[i])
			}
		}
	})
}
