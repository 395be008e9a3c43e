package spelling

import "testing"

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"prompt", "prompt", 0},
		{"pormpt", "prompt", 1}, // a swap of neighbours
		{"promt", "prompt", 1},
		{"size", "seed", 3},
		{"", "abc", 3},
		{"jsonhash", "json-hash", 1},
		{"größe", "grosse", 3}, // runes, not bytes: ö→o, ß→ss
	}
	for _, tt := range tests {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	long := string(make([]byte, 100))
	if Distance(long, long) != 0 || Distance(long, long+"x") < 1000 {
		t.Error("long strings must be equal or very far apart")
	}
}
