package httprange

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in         string
		first, tot int64
		ok         bool
	}{
		{"bytes 0-99/100", 0, 100, true},
		{"bytes 100-199/1000", 100, 1000, true},
		{" bytes 5-9/* ", 5, -1, true},
		{"bytes 5-9/9", 0, 0, false},   // the end at the total
		{"bytes 9-5/100", 0, 0, false}, // the end before the start
		{"bytes -1-5/100", 0, 0, false},
		{"bytes 0-99", 0, 0, false},
		{"bytes */200", 0, 0, false},
		{"items 0-99/100", 0, 0, false},
		{"bytes a-b/c", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		first, tot, ok := Parse(tt.in)
		if ok != tt.ok || ok && (first != tt.first || tot != tt.tot) {
			t.Errorf("Parse(%q) = %d, %d, %v; want %d, %d, %v", tt.in, first, tot, ok, tt.first, tt.tot, tt.ok)
		}
	}
}
