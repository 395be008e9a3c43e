package idglob

import "testing"

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		glob, name string
		want       bool
	}{
		{"ui/*", "ui/button", true},
		{"ui/*", "ui/icons/coin", false},
		{"ui/**", "ui/icons/coin", true},
		{"ui/**", "ui", true},
		{"**/coin", "ui/icons/coin", true},
		{"**/coin", "coin", true},
		{"ui/**/coin", "ui/coin", true},
		{"ui/**/coin", "ui/a/b/coin", true},
		{"ui/**/coin", "ui/a/b/gem", false},
		{"hero/walk-?", "hero/walk-2", true},
		{"hero/walk-?", "hero/walk-10", false},
		{"[a-c]/x", "b/x", true},
		{"[a-c]/x", "d/x", false},
		{"[", "[", false}, // malformed: matches nothing
		{"ui/button", "ui/button", true},
		{"ui/button", "ui/buttons", false},
	} {
		if got := Match(c.glob, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.glob, c.name, got, c.want)
		}
	}
}

func TestHasMeta(t *testing.T) {
	for s, want := range map[string]bool{"ui/button": false, "ui/*": true, "hero/walk-?": true, "[ab]/x": true, "a-b_c/d": false} {
		if got := HasMeta(s); got != want {
			t.Errorf("HasMeta(%q) = %v, want %v", s, got, want)
		}
	}
}
