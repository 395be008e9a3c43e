package benchset

import (
	"bytes"
	"testing"
)

func TestSets(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		min, max int // side limits
	}{
		{"uniform", 300, 46, 62},
		{"mixed", 200, 8, 384},
		{"strips", 150, 4, 512},
		{"many-small", 1500, 8, 40},
		{"pot", 300, 8, 128},
	}
	sets := All()
	if len(sets) != len(tests) {
		t.Fatalf("%d sets, want %d", len(sets), len(tests))
	}
	for i, tt := range tests {
		s := sets[i]
		if s.Name != tt.name || len(s.Sizes) != tt.n {
			t.Errorf("set %d is %s with %d sizes, want %s with %d", i, s.Name, len(s.Sizes), tt.name, tt.n)
		}
		if s.Padding != 2*s.Border {
			t.Errorf("%s: padding %d is not twice the border %d", s.Name, s.Padding, s.Border)
		}
		for _, wh := range s.Sizes {
			for _, v := range wh {
				if v < tt.min || v > tt.max {
					t.Fatalf("%s: side %d outside %d..%d", s.Name, v, tt.min, tt.max)
				}
				if s.Name == "pot" && v&(v-1) != 0 {
					t.Fatalf("pot: side %d is not a power of two", v)
				}
			}
		}
	}
	// Fixed seeds: the same sets every time.
	for i, s := range All() {
		a, _ := s.JSON()
		b, _ := sets[i].JSON()
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between calls", s.Name)
		}
	}
}
