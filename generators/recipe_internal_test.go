package generators

import "testing"

// TestRecipeSchedulerOptions checks that a scheduler: mapping's options
// are written into the PNG recipe, and that a plain name adds nothing.
func TestRecipeSchedulerOptions(t *testing.T) {
	yes := true
	tests := []struct {
		p    genParams
		want map[string]string // "": absent
	}{
		{genParams{Scheduler: "heun"}, map[string]string{"karras": "", "spacing": "", "eta": ""}},
		{genParams{Scheduler: "unipc", Karras: &yes, Spacing: "trailing"}, map[string]string{"karras": "true", "spacing": "trailing", "eta": ""}},
		{genParams{Scheduler: "ddim", Eta: 0.3}, map[string]string{"karras": "", "spacing": "", "eta": "0.3"}},
	}
	for _, tt := range tests {
		rec := (&genJob{p: tt.p}).recipe()
		if rec.Scheduler != tt.p.Scheduler {
			t.Errorf("%+v: recipe scheduler %q", tt.p, rec.Scheduler)
		}
		for k, w := range tt.want {
			if g := rec.Extra[k]; g != w {
				t.Errorf("%+v: recipe %s = %q, want %q", tt.p, k, g, w)
			}
		}
	}
}
