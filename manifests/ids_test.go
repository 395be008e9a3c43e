package manifests

import (
	"regexp"
	"testing"
)

// TestIDSuggestionsAreValid checks that every id CheckID suggests in place
// of a bad one is itself a valid id, and that the suggestions people see
// most are the expected ones.
func TestIDSuggestionsAreValid(t *testing.T) {
	suggestion := regexp.MustCompile(`did you mean "([^"]*)"\?`)
	for _, c := range []struct{ id, want string }{
		{"env/Grass Ref", "env/grass-ref"},
		{"Dungeon/Floor", "dungeon/floor"},
		{"ui/Button 2", "ui/button-2"},
		{"hero/walk.left", "hero/walk-left"},
		{"fx/Lava  Flow!", "fx/lava-flow"},
		{"props/Crate_Material", "props/crate_material"},
		{"env/ Grass", "env/grass"},
		{"env/Grass /ref", "env/grass/ref"},
		{"Ünïcode/Straße", "n-code/stra-e"},
		{"A", "a"},
		{"env/!!!", ""},
		{"Con", ""},
		{"a/B/..", ""},
		{"ÄÖÜ", ""},
	} {
		msg, hint := CheckID(c.id)
		if msg == "" {
			t.Errorf("%q: want it refused", c.id)
			continue
		}
		got := ""
		if m := suggestion.FindStringSubmatch(hint); m != nil {
			got = m[1]
		}
		if got != c.want {
			t.Errorf("%q: suggests %q (hint %q), want %q", c.id, got, hint, c.want)
		}
		if got != "" {
			if m, h := CheckID(got); m != "" {
				t.Errorf("%q: suggestion %q is itself invalid: %s (%s)", c.id, got, m, h)
			}
		}
	}
}
