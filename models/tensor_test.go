package models

import (
	"math"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/onnx"
	"github.com/kiln-dev/kiln/models/sampler"
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

// checkFinite finds ±Inf and NaN anywhere, and nothing else.
func TestCheckFinite(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	tests := []struct {
		name string
		n    int     // values
		at   int     // where bad is put, -1 for nowhere
		bad  float32 // the value put there
		want string  // "" for no error
	}{
		{"all finite", 1003, -1, 0, ""},
		{"empty", 0, -1, 0, ""},
		{"largest float32 is finite", 9, 4, math.MaxFloat32, ""},
		{"subnormal is finite", 9, 4, math.SmallestNonzeroFloat32, ""},
		{"+Inf first", 8, 0, inf, "+Inf at element 0"},
		{"-Inf in the middle", 1003, 500, -inf, "-Inf at element 500"},
		{"NaN in the tail", 1003, 1002, nan, "NaN at element 1002"},
		{"NaN alone", 1, 0, nan, "NaN at element 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := make([]float32, tt.n)
			for i := range d {
				d[i] = float32(i%7) - 3
			}
			if tt.at >= 0 {
				d[tt.at] = tt.bad
			}
			err := checkFinite("vae decoder", sampler.Tensor{Shape: []int64{int64(tt.n)}, Data: d})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
