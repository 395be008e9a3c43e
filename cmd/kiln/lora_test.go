package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoRAErrorsExit checks the two ways a LoRA is refused: a path
// outside the project is a manifest error (exit 2, at file:line:col), and
// a LoRA whose modules match no weight of the model fails its stage
// (exit 1) with the counts and examples.
func TestLoRAErrorsExit(t *testing.T) {
	t.Parallel()
	style, err := os.ReadFile(filepath.Join("..", "..", "models", "lora", "testdata", "style.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("outside the project", func(t *testing.T) {
		p := t.TempDir()
		writeFiles(t, p, map[string]string{
			"kiln.yaml":   "version: 1\nmodels:\n  sd: models/sd\n",
			"m.kiln.yaml": "version: 1\nassets:\n  - {id: g, kind: tileable, model: sd, prompt: stone, loras: [{path: ../style.safetensors}]}\n",
		})
		r := kiln(t, p, "build", "-q")
		if r.code != 2 || !strings.Contains(r.stderr, "m.kiln.yaml:3:") || !strings.Contains(r.stderr, "loras[0].path") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("matches no weight", func(t *testing.T) {
		ortLibrary(t)
		p := modelProject(t, writeTurbo(t, t.TempDir(), "turbo"))
		writeFiles(t, p, map[string]string{
			"m.kiln.yaml":          "version: 1\nassets:\n  - {id: g, kind: tileable, model: sd, prompt: stone, size: 64, steps: 1, loras: [{path: styles/s.safetensors}]}\n",
			"styles/s.safetensors": string(style),
		})
		rep, r := buildJSON(t, p)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
		}
		msg := stageErrors(rep)["g:generate"]
		t.Log(msg)
		for _, want := range []string{"LoRA styles/s.safetensors does not fit", "none of its", "modules matches a weight of the model (e.g. lora_"} {
			if !strings.Contains(msg, want) {
				t.Errorf("stage error %q does not mention %q", msg, want)
			}
		}
	})
}
