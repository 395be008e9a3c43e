package generators

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

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

// loraCache keeps parsed LoRA files by path, size and modification time,
// so the stages of one plan that share a style read and hash it once. A
// nil cache reads every time.
type loraCache struct {
	mu    sync.Mutex
	files map[loraFile]*lora.LoRA
}

type loraFile struct {
	path  string
	size  int64
	mtime int64
}

// load reads a generation's LoRA files from the project at root.
func (c *loraCache) load(root string, ls []loraParam) ([]lora.Weighted, error) {
	out := make([]lora.Weighted, len(ls))
	for i, l := range ls {
		path, err := safepath.Join(root, filepath.FromSlash(l.Path))
		if err != nil {
			return nil, fmt.Errorf("LoRA %s: %w", l.Path, err)
		}
		w, err := c.get(path)
		if err != nil {
			return nil, err
		}
		out[i] = lora.Weighted{Name: l.Path, LoRA: w, Scale: l.Scale}
	}
	return out, nil
}

// get returns the parsed file at path, from the cache while the file's
// size and modification time are unchanged.
func (c *loraCache) get(path string) (*lora.LoRA, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("LoRA %s: %w", path, err)
	}
	key := loraFile{path, st.Size(), st.ModTime().UnixNano()}
	if c != nil {
		c.mu.Lock()
		w := c.files[key]
		c.mu.Unlock()
		if w != nil {
			return w, nil
		}
	}
	w, err := lora.Load(path)
	if err != nil {
		return nil, err
	}
	if c != nil {
		c.mu.Lock()
		if c.files == nil {
			c.files = map[loraFile]*lora.LoRA{}
		}
		c.files[key] = w
		c.mu.Unlock()
	}
	return w, nil
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
