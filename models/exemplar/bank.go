package exemplar

import (
	"context"
	"fmt"
	"image"
	"math"
	"sort"

	"github.com/kiln-dev/kiln/generators/sampler"
)

// source is one exemplar image as the bank reads it: planar RGB in
// [-1, 1] (the sampler's pixel space), and whether it tiles (procedural
// exemplars do, so patches may wrap around its borders; a user's
// reference image does not, so its patches stay inside it).
type source struct {
	w, h int
	pix  []float32 // [3][h][w]
	wrap bool
}

func newSource(img image.Image, wrap bool) source {
	t := sampler.ImageToTensor(img)
	return source{w: int(t.Shape[3]), h: int(t.Shape[2]), pix: t.Data, wrap: wrap}
}

// at reads channel c at (x, y), wrapping or clamping out-of-range
// coordinates (clamping is never reached for non-wrapping sources, whose
// patches are taken from the interior).
func (s *source) at(c, x, y int) float32 {
	if s.wrap {
		x, y = wrapInt(x, s.w), wrapInt(y, s.h)
	} else {
		x, y = min(max(x, 0), s.w-1), min(max(y, 0), s.h-1)
	}
	return s.pix[(c*s.h+y)*s.w+x]
}

// patchBank is the exemplar patch bank for one patch size, in the form the
// denoiser graph takes it.
//
// A patch is the vector v[c][ky][kx] = img[c][y+ky-r][x+kx-r] around
// (x, y), r = p/2: the layout of a Conv weight, so proj's rows are Conv
// kernels and the Conv of the noisy image with them gives each pixel's
// projected patch. proj is the identity when 3p² ≤ the dimension limit,
// else the top principal directions of the bank's patches (uncentred, so
// the mean patch is kept in the first direction and no bias is needed).
type patchBank struct {
	p, d, n int
	down    int       // the comparison runs at 1/down resolution
	proj    []float32 // [d][3p²]
	feat    []float32 // [d][n]: projected bank patches, transposed for MatMul
	sqnorm  []float32 // [n]: squared length of each projected patch
	centres []float32 // [n][3][down][down]: the full-resolution pixels under each patch's centre
	// src is each patch's source, and cx, cy the centre of the
	// full-resolution block under its centre, in that source's pixels
	// (for layouts and objects).
	src    []int32
	cx, cy []float32
}

// buildBank samples n patches of size p from the sources average-pooled
// by down (an equal share from each, on a jittered grid so every part of
// every exemplar is represented), projects them to at most dmax
// dimensions and returns the bank. The same arguments always give the
// same bank.
func buildBank(ctx context.Context, srcs []source, p, down, n, dmax int, seed uint64) (*patchBank, error) {
	if p < 1 || p%2 == 0 {
		return nil, fmt.Errorf("patch size %d: want an odd size of at least 1", p)
	}
	down = max(down, 1)
	r := p / 2
	span := p * down // full-resolution extent of a patch
	var usable []int
	for i, s := range srcs {
		if s.w >= span && s.h >= span {
			usable = append(usable, i)
		}
	}
	if len(usable) == 0 {
		return nil, fmt.Errorf("every exemplar is smaller than the %d×%d-pixel patches the denoiser compares: give exemplars of at least %d pixels on each side", span, span, span)
	}
	// A patch is placed by the top-left corner (bx, by) of the
	// full-resolution block under its centre; every offset is allowed,
	// not just multiples of down, so coarse levels do not lock structure
	// to a down-pixel grid. A bank larger than the number of distinct
	// patches would only hold duplicates.
	total := 0
	for _, si := range usable {
		s := &srcs[si]
		if s.wrap {
			total += s.w * s.h
		} else {
			total += (s.w - span + 1) * (s.h - span + 1)
		}
	}
	n = min(n, total)
	dim := 3 * p * p
	vecs := make([]float32, 0, n*dim)
	centres := make([]float32, 0, 3*down*down*n)
	inv := 1 / float32(down*down)
	srcOf := make([]int32, 0, n)
	cxs, cys := make([]float32, 0, n), make([]float32, 0, n)
	half := float32(down-1) / 2
	g := newRNG(seed ^ uint64(p)*0x2545f4914f6cdd1d ^ uint64(down)<<56)
	for k, si := range usable {
		s := &srcs[si]
		quota := n / len(usable)
		if k < n%len(usable) {
			quota++
		}
		x0, x1, y0, y1 := 0, s.w, 0, s.h
		if !s.wrap {
			x0, x1, y0, y1 = r*down, s.w-span+r*down+1, r*down, s.h-span+r*down+1
		}
		for _, pt := range jitteredGrid(g, quota, x1-x0, y1-y0) {
			bx, by := x0+pt[0], y0+pt[1]
			srcOf = append(srcOf, int32(si))
			cxs, cys = append(cxs, float32(bx)+half), append(cys, float32(by)+half)
			for c := 0; c < 3; c++ {
				for ky := -r; ky <= r; ky++ {
					for kx := -r; kx <= r; kx++ {
						var sum float32
						for i := 0; i < down; i++ {
							for j := 0; j < down; j++ {
								sum += s.at(c, bx+kx*down+j, by+ky*down+i)
							}
						}
						vecs = append(vecs, sum*inv)
					}
				}
			}
			// The full-resolution block under the centre pixel, [c][i][j]:
			// what the graph's DepthToSpace puts back in place.
			for c := 0; c < 3; c++ {
				for i := 0; i < down; i++ {
					for j := 0; j < down; j++ {
						centres = append(centres, s.at(c, bx+j, by+i))
					}
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := &patchBank{p: p, n: n, down: down, centres: centres, src: srcOf, cx: cxs, cy: cys}
	if dim <= dmax {
		b.d = dim
		b.proj = make([]float32, dim*dim)
		for i := 0; i < dim; i++ {
			b.proj[i*dim+i] = 1
		}
	} else {
		b.d = dmax
		proj, err := principalDirections(ctx, vecs, n, dim, dmax, seed)
		if err != nil {
			return nil, err
		}
		b.proj = proj
	}
	b.feat = make([]float32, b.d*n)
	b.sqnorm = make([]float32, n)
	for i := 0; i < n; i++ {
		v := vecs[i*dim : (i+1)*dim]
		var ss float64
		for k := 0; k < b.d; k++ {
			f := dot32(b.proj[k*dim:(k+1)*dim], v)
			b.feat[k*n+i] = float32(f)
			ss += f * f
		}
		b.sqnorm[i] = float32(ss)
	}
	return b, nil
}

// jitteredGrid returns count distinct positions in a w×h area: one random
// point in each of count cells of a grid, the cells chosen at random when
// the grid has more than count.
func jitteredGrid(g *rng, count, w, h int) [][2]int {
	if count <= 0 || w <= 0 || h <= 0 {
		return nil
	}
	// A grid of about count cells with the area's aspect ratio.
	cols := max(1, int(math.Round(math.Sqrt(float64(count)*float64(w)/float64(h)))))
	rows := max(1, (count+cols-1)/cols)
	cells := make([]int, cols*rows)
	for i := range cells {
		cells[i] = i
	}
	for i := len(cells) - 1; i > 0; i-- {
		j := g.intn(i + 1)
		cells[i], cells[j] = cells[j], cells[i]
	}
	out := make([][2]int, 0, count)
	for i := 0; i < count; i++ {
		c := cells[i%len(cells)]
		cx, cy := c%cols, c/cols
		xa, xb := cx*w/cols, (cx+1)*w/cols
		ya, yb := cy*h/rows, (cy+1)*h/rows
		x := xa
		if xb > xa {
			x += g.intn(xb - xa)
		}
		y := ya
		if yb > ya {
			y += g.intn(yb - ya)
		}
		out = append(out, [2]int{min(x, w-1), min(y, h-1)})
	}
	return out
}

func dot32(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

// principalDirections returns the top k eigenvectors ([k][dim], rows of
// unit length, strongest first) of the uncentred second-moment matrix of
// the n vectors, by subspace iteration followed by a Rayleigh–Ritz step.
// It is deterministic for a given seed.
func principalDirections(ctx context.Context, vecs []float32, n, dim, k int, seed uint64) ([]float32, error) {
	// C = Σ v vᵀ / m over at most 1024 of the vectors (evenly strided),
	// which estimates the directions well and bounds the cost.
	step := max(1, n/1024)
	C := make([]float64, dim*dim)
	m := 0
	row := make([]float64, dim)
	for i := 0; i < n; i += step {
		v := vecs[i*dim : (i+1)*dim]
		for a := range row {
			row[a] = float64(v[a])
		}
		for a := 0; a < dim; a++ {
			va := row[a]
			if va == 0 {
				continue
			}
			ca := C[a*dim : a*dim+a+1]
			for b := range ca {
				ca[b] += va * row[b]
			}
		}
		m++
	}
	for a := 0; a < dim; a++ {
		for b := 0; b < a; b++ {
			C[b*dim+a] = C[a*dim+b]
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	q := min(dim, k+8) // oversampled subspace
	Q := make([]float64, dim*q)
	g := newRNG(seed ^ 0x7f4a7c159e3779b9)
	for i := range Q {
		Q[i] = g.rangef(-1, 1)
	}
	orthonormalise(Q, dim, q)
	Z := make([]float64, dim*q)
	for it := 0; it < 12; it++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mulSym(Z, C, Q, dim, q)
		Q, Z = Z, Q
		orthonormalise(Q, dim, q)
	}
	// Rayleigh–Ritz: B = Qᵀ C Q, eigenvectors of B rotate Q.
	mulSym(Z, C, Q, dim, q)
	B := make([]float64, q*q)
	for i := 0; i < q; i++ {
		for j := 0; j < q; j++ {
			var s float64
			for a := 0; a < dim; a++ {
				s += Q[a*q+i] * Z[a*q+j]
			}
			B[i*q+j] = s
		}
	}
	vals, V := jacobiEigen(B, q)
	order := make([]int, q)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	out := make([]float32, k*dim)
	for r := 0; r < k; r++ {
		e := order[r]
		// Fix the sign so the result does not depend on the solver's
		// arbitrary choice: the largest component is positive.
		vec := make([]float64, dim)
		big := 0.0
		for a := 0; a < dim; a++ {
			var s float64
			for j := 0; j < q; j++ {
				s += Q[a*q+j] * V[j*q+e]
			}
			vec[a] = s
			if math.Abs(s) > math.Abs(big) {
				big = s
			}
		}
		sign := 1.0
		if big < 0 {
			sign = -1
		}
		for a := 0; a < dim; a++ {
			out[r*dim+a] = float32(sign * vec[a])
		}
	}
	return out, nil
}

// mulSym sets Z = C·Q for C [dim][dim] and Q, Z [dim][q].
func mulSym(Z, C, Q []float64, dim, q int) {
	for a := 0; a < dim; a++ {
		z := Z[a*q : (a+1)*q]
		for j := range z {
			z[j] = 0
		}
		ca := C[a*dim : (a+1)*dim]
		for b, c := range ca {
			if c == 0 {
				continue
			}
			qb := Q[b*q : (b+1)*q]
			for j, v := range qb {
				z[j] += c * v
			}
		}
	}
}

// orthonormalise makes the q columns of Q [dim][q] orthonormal by modified
// Gram–Schmidt (twice, for stability). A column that collapses is replaced
// by a unit vector along the first axis it is not yet spanning.
func orthonormalise(Q []float64, dim, q int) {
	for pass := 0; pass < 2; pass++ {
		for j := 0; j < q; j++ {
			for i := 0; i < j; i++ {
				var s float64
				for a := 0; a < dim; a++ {
					s += Q[a*q+i] * Q[a*q+j]
				}
				for a := 0; a < dim; a++ {
					Q[a*q+j] -= s * Q[a*q+i]
				}
			}
			var nn float64
			for a := 0; a < dim; a++ {
				nn += Q[a*q+j] * Q[a*q+j]
			}
			if nn < 1e-24 {
				for a := 0; a < dim; a++ {
					Q[a*q+j] = 0
				}
				Q[(j%dim)*q+j] = 1
				continue
			}
			inv := 1 / math.Sqrt(nn)
			for a := 0; a < dim; a++ {
				Q[a*q+j] *= inv
			}
		}
	}
}

// jacobiEigen diagonalises the symmetric n×n matrix A (destroyed) by
// cyclic Jacobi rotations; it returns the eigenvalues and the eigenvectors
// as the columns of V.
func jacobiEigen(A []float64, n int) ([]float64, []float64) {
	V := make([]float64, n*n)
	for i := 0; i < n; i++ {
		V[i*n+i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		off := 0.0
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				off += A[i*n+j] * A[i*n+j]
			}
		}
		if off < 1e-22 {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				apq := A[p*n+q]
				if math.Abs(apq) < 1e-300 {
					continue
				}
				theta := (A[q*n+q] - A[p*n+p]) / (2 * apq)
				t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < n; k++ {
					akp, akq := A[k*n+p], A[k*n+q]
					A[k*n+p] = c*akp - s*akq
					A[k*n+q] = s*akp + c*akq
				}
				for k := 0; k < n; k++ {
					apk, aqk := A[p*n+k], A[q*n+k]
					A[p*n+k] = c*apk - s*aqk
					A[q*n+k] = s*apk + c*aqk
				}
				for k := 0; k < n; k++ {
					vkp, vkq := V[k*n+p], V[k*n+q]
					V[k*n+p] = c*vkp - s*vkq
					V[k*n+q] = s*vkp + c*vkq
				}
			}
		}
	}
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = A[i*n+i]
	}
	return vals, V
}
