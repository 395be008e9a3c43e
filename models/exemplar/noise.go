package exemplar

import "math"

// rng is a small deterministic generator (SplitMix64). The procedural
// library and the patch bank draw from it, so a seed gives the same
// exemplars and the same bank on every machine and Go version (math/rand's
// streams are not promised to stay fixed).
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: seed ^ 0x9e3779b97f4a7c15} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// float returns a uniform value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// rangef returns a uniform value in [lo, hi).
func (r *rng) rangef(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// intn returns a uniform integer in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// mix64 is SplitMix64's finaliser, a good 64-bit hash.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// hash2 hashes integer lattice coordinates with a seed.
func hash2(x, y int, seed uint64) uint64 {
	return mix64(seed ^ mix64(uint64(int64(x))*0x632be59bd9b4e019^uint64(int64(y))*0x8cb92ba72f3d8dd7))
}

// hashf maps a hash to [0, 1).
func hashf(h uint64) float64 { return float64(h>>11) / (1 << 53) }

func wrapInt(i, n int) int {
	i %= n
	if i < 0 {
		i += n
	}
	return i
}

func fract(v float64) float64 { return v - math.Floor(v) }

func smooth(t float64) float64 { return t * t * t * (t*(t*6-15) + 10) }

func smoothstep(e0, e1, x float64) float64 {
	t := clamp((x-e0)/(e1-e0), 0, 1)
	return t * t * (3 - 2*t)
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func lerp(a, b, t float64) float64 { return a + (b-a)*t }

// gradNoise is periodic gradient (Perlin-style) noise at (u, v), with u and
// v in lattice cells; the lattice repeats every px cells along u and py
// along v, so noise sampled over one period tiles. Values lie in about
// [-1, 1].
func gradNoise(u, v float64, px, py int, seed uint64) float64 {
	x0, y0 := math.Floor(u), math.Floor(v)
	fx, fy := u-x0, v-y0
	ix, iy := int(x0), int(y0)
	grad := func(i, j int, dx, dy float64) float64 {
		h := hash2(wrapInt(i, px), wrapInt(j, py), seed)
		a := hashf(h) * 2 * math.Pi
		return math.Cos(a)*dx + math.Sin(a)*dy
	}
	n00 := grad(ix, iy, fx, fy)
	n10 := grad(ix+1, iy, fx-1, fy)
	n01 := grad(ix, iy+1, fx, fy-1)
	n11 := grad(ix+1, iy+1, fx-1, fy-1)
	sx, sy := smooth(fx), smooth(fy)
	return 1.41 * lerp(lerp(n00, n10, sx), lerp(n01, n11, sx), sy)
}

// fbm sums octaves of periodic gradient noise over the unit torus: (x, y)
// in [0, 1) image units, fx and fy lattice cells across the image on the
// first octave (different values stretch the noise), doubling per octave.
// The result is normalised to about [-1, 1].
func fbm(x, y float64, fx, fy, octaves int, gain float64, seed uint64) float64 {
	sum, amp, norm := 0.0, 1.0, 0.0
	for o := 0; o < octaves; o++ {
		sum += amp * gradNoise(x*float64(fx), y*float64(fy), fx, fy, seed+uint64(o)*0x51ed27)
		norm += amp
		amp *= gain
		fx, fy = fx*2, fy*2
	}
	return sum / norm
}

// worley is periodic cellular noise on the unit torus with n×m jittered
// feature points. It returns the distances to the nearest and second
// nearest points (in cell units) and a hash identifying the nearest cell.
func worley(x, y float64, n, m int, jitter float64, seed uint64) (f1, f2 float64, id uint64) {
	u, v := x*float64(n), y*float64(m)
	cx, cy := int(math.Floor(u)), int(math.Floor(v))
	f1, f2 = math.Inf(1), math.Inf(1)
	// With jitter ≤ 1 every point stays in its cell, so the 3×3 cells
	// around the sample hold the nearest point and, but for rare
	// configurations, the second nearest.
	for j := -1; j <= 1; j++ {
		for i := -1; i <= 1; i++ {
			gx, gy := cx+i, cy+j
			h := hash2(wrapInt(gx, n), wrapInt(gy, m), seed)
			px := float64(gx) + 0.5 + jitter*(hashf(h)-0.5)
			py := float64(gy) + 0.5 + jitter*(hashf(mix64(h))-0.5)
			d := math.Hypot(px-u, py-v)
			if d < f1 {
				f2, f1, id = f1, d, h
			} else if d < f2 {
				f2 = d
			}
		}
	}
	return f1, f2, id
}
