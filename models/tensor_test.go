package models

import (
	"math"
	"testing"

	"github.com/kiln-dev/kiln/models/onnx"
)

// The fast half-precision conversions must agree with the reference ones
// in models/onnx: exhaustively for float16 → float32, and on every
// boundary plus millions of bit patterns for float32 → float16.
func TestFloat16ConversionsMatchReference(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		got, want := f16ToF32(uint16(h)), onnx.Float16ToFloat32(uint16(h))
		if math.Float32bits(got) != math.Float32bits(want) && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
			t.Fatalf("f16ToF32(%#04x) = %v, want %v", h, got, want)
		}
	}
	check := func(b uint32) {
		f := math.Float32frombits(b)
		got, want := f32ToF16(f), onnx.Float32ToFloat16(f)
		if math.IsNaN(float64(f)) {
			if got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
				t.Fatalf("f32ToF16(NaN %#08x) = %#04x, not a NaN", b, got)
			}
			return
		}
		if got != want {
			t.Fatalf("f32ToF16(%g = %#08x) = %#04x, want %#04x", f, b, got, want)
		}
	}
	// Every half value, its neighbours and the midpoints between halves
	// (where ties round to even).
	for h := 0; h < 1<<16; h++ {
		b := math.Float32bits(onnx.Float16ToFloat32(uint16(h)))
		for d := int64(-2); d <= 2; d++ {
			check(uint32(int64(b) + d))
		}
		check(b + 1<<12)
		if b&0x7fffffff != 0 {
			check(b - 1<<12)
		}
	}
	for _, b := range []uint32{0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x477fe000, 0x477ff000, 0x47800000, 0x38800000, 0x387fffff, 0x33000000, 0x33000001, 0x32ffffff} {
		check(b)
	}
	s := uint32(12345)
	for i := 0; i < 3_000_000; i++ {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		check(s)
	}
	// Slices round-trip through the little-endian byte layout.
	src := []float32{0, -1.5, 65504, 1e-7, float32(math.Inf(-1))}
	buf := make([]byte, 2*len(src))
	float32sToFloat16(buf, src)
	back := make([]float32, len(src))
	float16sToFloat32(back, buf)
	for i := range src {
		if want := onnx.Float16ToFloat32(onnx.Float32ToFloat16(src[i])); back[i] != want {
			t.Errorf("round trip of %v = %v, want %v", src[i], back[i], want)
		}
	}
}

func BenchmarkFloat16Conversion(b *testing.B) {
	// The text conditioning of an SD 1.5 CFG step: 2×77×768 values.
	src := pseudo(2*77*768, 3)
	buf := make([]byte, 2*len(src))
	back := make([]float32, len(src))
	b.Run("to-float16", func(b *testing.B) {
		b.SetBytes(int64(4 * len(src)))
		for i := 0; i < b.N; i++ {
			float32sToFloat16(buf, src)
		}
	})
	b.Run("to-float32", func(b *testing.B) {
		b.SetBytes(int64(2 * len(src)))
		for i := 0; i < b.N; i++ {
			float16sToFloat32(back, buf)
		}
	})
	// What a UNet step pays for unchanged conditioning: the comparison
	// with the values converted at the previous step.
	b.Run("unchanged-repeat", func(b *testing.B) {
		var sc scratch
		sc.half("encoder_hidden_states", src)
		b.SetBytes(int64(4 * len(src)))
		for i := 0; i < b.N; i++ {
			sc.half("encoder_hidden_states", src)
		}
	})
}
