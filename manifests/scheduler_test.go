package manifests

import "testing"

// TestSchedulerOptions checks that scheduler: binds a plain name and a
// mapping, and that a file's defaults give their mapping to the assets
// that name no scheduler.
func TestSchedulerOptions(t *testing.T) {
	p := mustLoad(t, map[string]string{"a.kiln.yaml": m(`defaults:
  scheduler: {name: dpmpp_2m, karras: true, spacing: trailing}
assets:
  - {id: inherit, kind: tileable, prompt: stone}
  - {id: plain, kind: tileable, prompt: stone, scheduler: heun}
  - {id: ddim, kind: tileable, prompt: stone, scheduler: {name: ddim, eta: 0.3, spacing: leading}}
  - {id: off, kind: tileable, prompt: stone, scheduler: {name: unipc, karras: false}}
  - {id: eta1, kind: tileable, prompt: stone, scheduler: {name: ddim, eta: 1}}
`)})
	yes, no := true, false
	tests := []struct {
		id   string
		name string
		opt  SchedulerOptions
	}{
		{"inherit", "dpmpp_2m", SchedulerOptions{Karras: &yes, Spacing: "trailing"}},
		{"plain", "heun", SchedulerOptions{}},
		{"ddim", "ddim", SchedulerOptions{Eta: 0.3, Spacing: "leading"}},
		{"off", "unipc", SchedulerOptions{Karras: &no}},
		{"eta1", "ddim", SchedulerOptions{Eta: 1}},
	}
	for _, tt := range tests {
		a := p.Asset(tt.id)
		if a == nil {
			t.Fatalf("no asset %s", tt.id)
		}
		got := a.SchedulerOptions
		karras := func(k *bool) string {
			if k == nil {
				return "unset"
			}
			if *k {
				return "true"
			}
			return "false"
		}
		if a.Scheduler != tt.name || karras(got.Karras) != karras(tt.opt.Karras) || got.Spacing != tt.opt.Spacing || got.Eta != tt.opt.Eta {
			t.Errorf("%s: scheduler %s %+v (karras %s), want %s %+v (karras %s)", tt.id, a.Scheduler, got, karras(got.Karras),
				tt.name, tt.opt, karras(tt.opt.Karras))
		}
	}
}
