package onnx

import (
	"math"
	"testing"
)

func TestFloat32ToFloat16(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                  // largest finite half
		{65519, 0x7bff},                  // rounds down to max
		{65520, 0x7c00},                  // rounds up to +Inf
		{1e9, 0x7c00},                    // overflow
		{-1e9, 0xfc00},                   // overflow
		{float32(math.Inf(1)), 0x7c00},   // +Inf
		{0.1, 0x2e66},                    // rounding of an inexact value
		{6.103515625e-05, 0x0400},        // smallest normal
		{5.960464477539063e-08, 0x0001},  // smallest subnormal
		{2.9802322387695312e-08, 0x0000}, // half of smallest subnormal: ties to even (0)
		{4.470348358154297e-08, 0x0001},  // 0.75 of smallest subnormal rounds up
		{1e-10, 0x0000},                  // underflow
		{1.0009765625, 0x3c01},           // 1 + 2^-10 exact
		{1.00048828125, 0x3c00},          // 1 + 2^-11: tie, to even (down)
		{1.00146484375, 0x3c02},          // 1 + 3*2^-11: tie, to even (up)
		{3.0517578125e-05, 0x0200},       // subnormal exact
	}
	for _, tt := range tests {
		if got := Float32ToFloat16(tt.in); got != tt.want {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
	if h := Float32ToFloat16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN converted to %#04x, not a NaN", h)
	}
}

// TestFloat16RoundTrip checks every half value survives half->float->half,
// and that float conversion matches the formula value.
func TestFloat16RoundTrip(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := Float16ToFloat32(h)
		exp := int(h>>10) & 0x1f
		mant := float64(h & 0x3ff)
		var want float64
		switch exp {
		case 0:
			want = mant * math.Pow(2, -24)
		case 0x1f:
			if mant != 0 {
				if !math.IsNaN(float64(f)) {
					t.Fatalf("%#04x: got %v, want NaN", h, f)
				}
				continue
			}
			want = math.Inf(1)
		default:
			want = (1 + mant/1024) * math.Pow(2, float64(exp-15))
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if float64(f) != want || math.Signbit(float64(f)) != (h&0x8000 != 0) {
			t.Fatalf("Float16ToFloat32(%#04x) = %v, want %v", h, f, want)
		}
		if back := Float32ToFloat16(f); back != h {
			t.Fatalf("round trip %#04x -> %v -> %#04x", h, f, back)
		}
	}
}

func BenchmarkFloat32ToFloat16(b *testing.B) {
	src := ramp(1<<16, 0.37)
	b.SetBytes(int64(4 * len(src)))
	for b.Loop() {
		Float32sToFloat16(src)
	}
}
