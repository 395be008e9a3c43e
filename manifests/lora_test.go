package manifests

import (
	"strings"
	"testing"
)

func TestLoRAs(t *testing.T) {
	p := mustLoad(t, map[string]string{
		ConfigFile: `version: 1
models:
  turbo: {path: models/turbo, kind: turbo, loras: [{path: styles/base.safetensors, scale: 0.5}]}
defaults:
  model: turbo
  loras: [{path: styles/pixel.safetensors}]
`,
		"a.kiln.yaml": `version: 1
assets:
  - {id: plain, kind: tileable, prompt: moss}
  - id: own
    kind: tileable
    prompt: moss
    loras:
      - {path: styles/ink.safetensors, scale: -1}
      - {path: ./styles/pixel.safetensors, scale: 2}
`,
	})
	if got := p.Config.Models["turbo"].LoRAs; len(got) != 1 || got[0].Path != "styles/base.safetensors" || got[0].Scale != 0.5 || got[0].Pos.Line != 3 {
		t.Errorf("model loras %+v", got)
	}
	byID := map[string]*Asset{}
	for _, a := range p.Assets {
		byID[a.ID] = a
	}
	if got := byID["plain"].LoRAs; len(got) != 1 || got[0].Path != "styles/pixel.safetensors" || got[0].Scale != 1 {
		t.Errorf("inherited loras %+v", got)
	}
	got := byID["own"].LoRAs
	if len(got) != 2 || got[0].Scale != -1 || got[1].Path != "styles/pixel.safetensors" || got[1].Scale != 2 {
		t.Errorf("own loras %+v", got)
	}
	if f := strings.Join(byID["own"].Files(), ","); f != "styles/ink.safetensors,styles/pixel.safetensors" {
		t.Errorf("Files() = %s", f)
	}
}

func TestLoRAErrors(t *testing.T) {
	tests := []struct {
		name, loras, want string
	}{
		{"outside", `[{path: ../x.safetensors}]`, "a.kiln.yaml:5:"},
		{"extension", `[{path: styles/x.ckpt}]`, ".safetensors"},
		{"no path", `[{scale: 1}]`, "path"},
		{"scale type", `[{path: styles/x.safetensors, scale: big}]`, "scale"},
		{"empty", `[]`, "loras"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := errLines(t, map[string]string{"a.kiln.yaml": "version: 1\nassets:\n  - id: a\n    kind: tileable\n    loras: " + tt.loras + "\n    prompt: moss\n"})
			if len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), tt.want) {
				t.Fatalf("errors %q, want one mentioning %q", lines, tt.want)
			}
		})
	}
}
