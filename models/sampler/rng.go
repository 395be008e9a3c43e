package sampler

import (
	"math"
	"runtime"
	"sync"
)

// Generator reproduces PyTorch's CPU random generator
// (torch.Generator("cpu").manual_seed(seed)) and torch.randn on it, so a
// seed from diffusers or ComfyUI gives the same starting noise here.
//
// PyTorch's CPU generator is a 32-bit Mersenne Twister (MT19937) seeded
// with the low 32 bits of the seed, plus a one-value cache of the second
// Box-Muller sample that the scalar normal path fills. torch.randn on a
// float32 tensor takes one of two algorithms:
//
//   - 16 or more values: the whole tensor is first filled with uniform
//     floats (24 random bits each), then turned into normals in blocks of
//     16 by Box-Muller on the pairs (j, j+8), using the 8-wide AVX2 float
//     log and sincos of ATen's avx_mathfun.h. When the size is not a
//     multiple of 16, the last 16 values are drawn again and recomputed.
//   - fewer than 16 values: one double-precision Box-Muller draw per pair
//     (53 random bits per uniform), the second value cached in the
//     generator for the next call.
//
// A Generator is not safe for concurrent use.
type Generator struct {
	mt     [624]uint32
	idx    int
	cached bool
	next   float64
	seed   uint64
}

// NewGenerator returns a generator in the state
// torch.Generator("cpu").manual_seed(seed) leaves.
func NewGenerator(seed uint64) *Generator {
	g := &Generator{}
	g.Seed(seed)
	return g
}

// Seed resets the generator as manual_seed does: the Mersenne Twister
// state from the seed's low 32 bits and no cached normal value.
func (g *Generator) Seed(seed uint64) {
	g.seed = seed
	g.mt[0] = uint32(seed)
	for i := 1; i < len(g.mt); i++ {
		prev := g.mt[i-1]
		g.mt[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	g.idx = len(g.mt)
	g.cached = false
}

// InitialSeed returns the seed the generator was last seeded with.
func (g *Generator) InitialSeed() uint64 { return g.seed }

// Uint32 returns the next 32-bit output of the Mersenne Twister.
func (g *Generator) Uint32() uint32 {
	if g.idx >= len(g.mt) {
		g.twist()
	}
	y := g.mt[g.idx]
	g.idx++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// Uint64 returns two outputs joined, the first in the high half, as
// PyTorch's random64 does.
func (g *Generator) Uint64() uint64 {
	hi := g.Uint32()
	lo := g.Uint32()
	return uint64(hi)<<32 | uint64(lo)
}

func (g *Generator) twist() {
	const (
		n, m    = 624, 397
		matrixA = 0x9908b0df
		upper   = 0x80000000
		lower   = 0x7fffffff
	)
	for i := 0; i < n; i++ {
		y := (g.mt[i] & upper) | (g.mt[(i+1)%n] & lower)
		v := g.mt[(i+m)%n] ^ (y >> 1)
		if y&1 != 0 {
			v ^= matrixA
		}
		g.mt[i] = v
	}
	g.idx = 0
}

// uniform32 is at::uniform_real_distribution<float>(0, 1): 24 random bits
// scaled into [0, 1).
func (g *Generator) uniform32() float32 {
	return float32(g.Uint32()&(1<<24-1)) * (1.0 / (1 << 24))
}

// uniform64 is at::uniform_real_distribution<double>(0, 1): 53 random bits
// scaled into [0, 1).
func (g *Generator) uniform64() float64 {
	return float64(g.Uint64()&(1<<53-1)) * (1.0 / (1 << 53))
}

// normal64 is at::normal_distribution<double>(0, 1) on this generator,
// including its cached second sample.
func (g *Generator) normal64() float64 {
	if g.cached {
		g.cached = false
		return g.next
	}
	u1 := g.uniform64()
	u2 := g.uniform64()
	r := math.Sqrt(-2 * math.Log1p(-u2))
	theta := 2 * math.Pi * u1
	g.next = r * math.Sin(theta)
	g.cached = true
	return r * math.Cos(theta)
}

// Randn returns a new tensor of the given shape filled as
// torch.randn(shape, generator=g) fills a float32 CPU tensor.
func (g *Generator) Randn(shape ...int64) Tensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	t := Tensor{Shape: append([]int64(nil), shape...), Data: make([]float32, n)}
	g.FillNormal(t.Data)
	return t
}

// FillNormal fills dst as torch.randn fills a contiguous float32 tensor of
// len(dst) values, without allocating.
func (g *Generator) FillNormal(dst []float32) {
	n := len(dst)
	if n < 16 {
		for i := range dst {
			dst[i] = float32(g.normal64())
		}
		return
	}
	for i := range dst {
		dst[i] = g.uniform32()
	}
	// The uniforms come from one sequential stream; the blocks of 16
	// are independent, so large fills (a latent of a 512² image is 16384
	// values) share them out over the cores. The result is the same.
	blocks := n / 16
	parts := 1
	if blocks >= 2*minBlocksPerPart {
		parts = min(runtime.GOMAXPROCS(0), blocks/minBlocksPerPart)
	}
	if parts <= 1 {
		boxMullerBlocks(dst[:16*blocks])
	} else {
		part := func(p int) {
			boxMullerBlocks(dst[16*(p*blocks/parts) : 16*((p+1)*blocks/parts)])
		}
		var wg sync.WaitGroup
		for p := 1; p < parts; p++ {
			wg.Go(func() { part(p) })
		}
		part(0)
		wg.Wait()
	}
	if n%16 != 0 {
		tail := (*[16]float32)(dst[n-16:])
		for i := range tail {
			tail[i] = g.uniform32()
		}
		boxMuller16(tail)
	}
}

// minBlocksPerPart is the fewest blocks of 16 worth a goroutine of their
// own in FillNormal (about 60 µs of work).
const minBlocksPerPart = 64

// boxMullerBlocks runs boxMuller16 over d, whose length is a multiple of
// 16.
func boxMullerBlocks(d []float32) {
	for i := 0; i+16 <= len(d); i += 16 {
		boxMuller16((*[16]float32)(d[i : i+16]))
	}
}

// boxMuller16 turns 16 uniforms into 16 normals in place: for j < 8,
// u1 = 1 - d[j] and u2 = d[j+8] give d[j] = r cos θ and d[j+8] = r sin θ
// with r = sqrt(-2 ln u1) and θ = 2π u2, all in float32 with the AVX2
// approximations PyTorch uses.
func boxMuller16(d *[16]float32) {
	const twoPi = float32(2 * math.Pi)
	for j := 0; j < 8; j++ {
		u1 := 1 - d[j]
		u2 := d[j+8]
		r := sqrt32(-2 * log256(u1))
		s, c := sincos256(twoPi * u2)
		d[j] = r * c
		d[j+8] = r * s
	}
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// fma32 is a fused multiply-add on float32 values with a single rounding,
// as the FMA instructions the AVX2 kernels compile to. a*b is exact in
// float64; the float64 sum can round to a float32 midpoint that the exact
// value is not on, so that rare case is settled by fma32Tie. The common
// path is small enough for the compiler to inline.
func fma32(a, b, c float32) float32 {
	s := float64(a)*float64(b) + float64(c)
	// A float32 midpoint has a 1 followed by 28 zero bits below the
	// 24-bit significand; only then can the float64 rounding have
	// decided the float32 one.
	if math.Float64bits(s)&(1<<29-1) == 1<<28 {
		return fma32Tie(a, b, c, s)
	}
	return float32(s)
}

// fma32Tie rounds a·b + c to float32 when s, its float64 rounding, is a
// float32 midpoint: s is nudged toward the exact value first. It is kept
// out of line so that fma32 stays inlinable.
//
//go:noinline
func fma32Tie(a, b, c float32, s float64) float32 {
	p := float64(a) * float64(b)
	bits := math.Float64bits(s)
	// Exact error of the float64 addition (Knuth's TwoSum).
	bb := s - p
	e := (p - (s - bb)) + (float64(c) - bb)
	switch {
	case e == 0:
	case (e > 0) == (s > 0):
		bits++
	default:
		bits--
	}
	return float32(math.Float64frombits(bits))
}

// Constants of ATen's avx_mathfun.h (Cephes single-precision log and
// sincos, after Julien Pommier's SSE version), rounded to float32 as the
// AVX2 kernel holds them.
const (
	cephesSqrtHF = float32(0.707106781186547524)
	logP0        = float32(7.0376836292e-2)
	logP1        = float32(-1.1514610310e-1)
	logP2        = float32(1.1676998740e-1)
	logP3        = float32(-1.2420140846e-1)
	logP4        = float32(1.4249322787e-1)
	logP5        = float32(-1.6668057665e-1)
	logP6        = float32(2.0000714765e-1)
	logP7        = float32(-2.4999993993e-1)
	logP8        = float32(3.3333331174e-1)
	logQ1        = float32(-2.12194440e-4)
	logQ2        = float32(0.693359375)

	minusDP1 = float32(-0.78515625)
	minusDP2 = float32(-2.4187564849853515625e-4)
	minusDP3 = float32(-3.77489497744594108e-8)
	sinP0    = float32(-1.9515295891e-4)
	sinP1    = float32(8.3321608736e-3)
	sinP2    = float32(-1.6666654611e-1)
	cosP0    = float32(2.443315711809948e-005)
	cosP1    = float32(-1.388731625493765e-003)
	cosP2    = float32(4.166664568298827e-002)
	fourOPi  = float32(1.27323954473516)
)

// log256 is one lane of avx_mathfun's log256_ps for x in (0, 1], with the
// multiply-adds fused as the compiler fuses them in PyTorch's AVX2 build.
// Explicit float32 conversions keep Go from fusing anything else.
func log256(x float32) float32 {
	if x <= 0 {
		return float32(math.NaN())
	}
	const minNorm = 0x00800000
	bits := math.Float32bits(x)
	if bits < minNorm {
		bits = minNorm
	}
	e := float32(int32(bits>>23)-0x7f) + 1
	x = math.Float32frombits(bits&^0x7f800000 | math.Float32bits(0.5))
	if x < cephesSqrtHF {
		e--
		x = float32(x-1) + x
	} else {
		x = x - 1
	}
	z := float32(x * x)
	y := fma32(logP0, x, logP1)
	y = fma32(y, x, logP2)
	y = fma32(y, x, logP3)
	y = fma32(y, x, logP4)
	y = fma32(y, x, logP5)
	y = fma32(y, x, logP6)
	y = fma32(y, x, logP7)
	y = fma32(y, x, logP8)
	y = float32(y * x)
	y = fma32(y, z, float32(e*logQ1))
	y = y - float32(z*0.5)
	x = float32(x + y)
	return fma32(e, logQ2, x)
}

// sincos256 is one lane of avx_mathfun's sincos256_ps, fused as log256 is.
func sincos256(x float32) (sin, cos float32) {
	signSin := math.Float32bits(x) & 0x80000000
	x = float32(math.Abs(float64(x)))
	j := int32(float32(x * fourOPi))
	j = (j + 1) &^ 1
	y := float32(j)
	swapSin := uint32(j&4) << 29
	polyFirst := j&2 == 0
	x = fma32(y, minusDP1, x)
	x = fma32(y, minusDP2, x)
	x = fma32(y, minusDP3, x)
	signCos := uint32(^(j-2)&4) << 29
	signSin ^= swapSin

	z := float32(x * x)
	c := fma32(cosP0, z, cosP1)
	c = fma32(c, z, cosP2)
	c = float32(c * z)
	c = fma32(c, z, -float32(z*0.5))
	c = c + 1

	s := fma32(sinP0, z, sinP1)
	s = fma32(s, z, sinP2)
	s = float32(s * z)
	s = fma32(s, x, x)

	if polyFirst {
		sin, cos = s, c
	} else {
		sin, cos = c, s
	}
	sin = math.Float32frombits(math.Float32bits(sin) ^ signSin)
	cos = math.Float32frombits(math.Float32bits(cos) ^ signCos)
	return sin, cos
}
