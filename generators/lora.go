package generators

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/lora"
)

// loraParam is one LoRA of a generation: its project file and scale. The
// scale is in the stage's cache key through its Params; the file's
// SHA-256 through its Files.
type loraParam struct {
	Path  string  `json:"path"`
	Scale float64 `json:"scale"`
}

// planLoRAs lists the LoRAs a generation merges: its model's (kiln.yaml)
// first, then the asset's own or its defaults'. ok is false when a problem
// was reported.
func (pl *planner) planLoRAs(a *manifests.Asset, info ModelInfo) ([]loraParam, bool) {
	var all []manifests.LoRA
	if m := pl.p.Config.Models[a.Model]; m != nil {
		all = append(all, m.LoRAs...)
	}
	all = append(all, a.LoRAs...)
	if len(all) == 0 {
		return nil, true
	}
	if info.Family == familyExemplar {
		pl.fail(a, "loras", fmt.Sprintf("LoRAs apply to Stable Diffusion models, but this asset uses %s", manifests.Exemplar),
			"remove loras:, or use a model folder")
		return nil, false
	}
	out := make([]loraParam, len(all))
	for i, l := range all {
		out[i] = loraParam{Path: l.Path, Scale: l.Scale}
	}
	return out, true
}

// loraFiles are the project files of a generation's LoRAs.
func loraFiles(ls []loraParam) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Path
	}
	return out
}

// loadLoRAs reads a generation's LoRA files from the project at root.
func loadLoRAs(root string, ls []loraParam) ([]lora.Weighted, error) {
	out := make([]lora.Weighted, len(ls))
	for i, l := range ls {
		path, err := safepath.Join(root, filepath.FromSlash(l.Path))
		if err != nil {
			return nil, fmt.Errorf("LoRA %s: %w", l.Path, err)
		}
		w, err := lora.Load(path)
		if err != nil {
			return nil, err
		}
		out[i] = lora.Weighted{Name: l.Path, LoRA: w, Scale: l.Scale}
	}
	return out, nil
}

// loraKey identifies a set of loaded LoRAs, for the model store's
// Diffusers: each file's SHA-256 and scale, in order.
func loraKey(ls []lora.Weighted) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.LoRA.SHA256 + "@" + strconv.FormatFloat(l.Scale, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

// loraRecipe is the recipe entry naming a generation's LoRAs: "path
// sha256:HEX scale S", separated by "; ".
func loraRecipe(ls []lora.Weighted) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s sha256:%s scale %s", l.Name, l.LoRA.SHA256, strconv.FormatFloat(l.Scale, 'g', -1, 64))
	}
	return strings.Join(parts, "; ")
}
