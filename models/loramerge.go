package models

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-dev/kiln/models/lora"
	"github.com/kiln-dev/kiln/models/onnx"
)

// LoRAMerge says which LoRA styles a session merges into its graph's
// weights when it loads (see package lora). The graph is then decoded,
// merged and handed to ONNX Runtime from memory, with the untouched
// weights still read from the model's external data files, so no copy of
// the model is written to disk. Sessions with different LoRAs (or scales)
// are different pool entries, kept under the pool's memory budget like
// any other.
type LoRAMerge struct {
	// Component is the model component the graph is (lora.UNet,
	// lora.TextEncoder or lora.TextEncoder2); only the LoRAs' modules for
	// it are merged.
	Component string
	LoRAs     []lora.Weighted
}

// poolKey identifies the merge in a PoolKey: each LoRA by its SHA-256
// and scale, in order (merging is a sum, but float rounding is not
// commutative, so order is kept).
func (m *LoRAMerge) poolKey() string {
	if m == nil {
		return ""
	}
	parts := make([]string, len(m.LoRAs))
	for i, w := range m.LoRAs {
		id := w.LoRA.SHA256
		if id == "" {
			id = w.Name
		}
		parts[i] = id + "@" + strconv.FormatFloat(w.Scale, 'g', -1, 64)
	}
	return "|lora=" + m.Component + ":" + strings.Join(parts, ",")
}

// mergeError marks an error of merging LoRAs: it is the LoRA's or the
// model's fault, never the execution provider's, so it must not make the
// runtime fall back to the CPU.
type mergeError struct{ err error }

func (e *mergeError) Error() string { return e.err.Error() }
func (e *mergeError) Unwrap() error { return e.err }

// mergedGraph decodes the graph at path, merges m into it and returns the
// encoded model and the folder its remaining external weights are in. It
// refuses a graph whose inline weights exceed limit bytes.
func mergedGraph(path, externalDataDir string, m *LoRAMerge, limit int64) ([]byte, string, error) {
	model, err := onnx.Load(path)
	if err != nil {
		return nil, "", &mergeError{fmt.Errorf("merge LoRAs into %s: %w", path, err)}
	}
	dir := externalDataDir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	if _, err := lora.Apply(model, dir, path, m.Component, m.LoRAs); err != nil {
		return nil, "", &mergeError{err}
	}
	if inline := inlineBytes(model); inline > limit {
		return nil, "", &mergeError{fmt.Errorf("merge LoRAs into %s: the merged weights make the in-memory graph %.1f GB, "+
			"above the 2 GB a serialized ONNX model may have (onnxruntime_go offers no way to hand ONNX Runtime weights "+
			"outside the graph); use fewer LoRA modules on this model, or a LoRA for the UNet's attention only", path, float64(inline)/1e9)}
	}
	data, err := model.Encode()
	if err != nil {
		return nil, "", &mergeError{fmt.Errorf("merge LoRAs into %s: %w", path, err)}
	}
	return data, dir, nil
}

// maxInlineGraph bounds a serialized graph handed to ONNX Runtime from
// memory: protobuf refuses messages of 2 GiB and more.
const maxInlineGraph = 2<<30 - 64<<20

// inlineBytes is the size of the graph's inline initializer data, the bulk
// of its serialized size.
func inlineBytes(m *onnx.Model) int64 {
	var n int64
	for _, t := range m.Graph.Initializers {
		if !t.IsExternal() {
			n += int64(len(t.RawData)) + 4*int64(len(t.FloatData)) + 8*int64(len(t.Int64Data)) + 4*int64(len(t.Int32Data))
		}
	}
	return n
}

// loraComponents maps the components LoRA files name to the model
// folder's components.
var loraComponents = map[string]string{lora.UNet: UNet, lora.TextEncoder: TextEncoder, lora.TextEncoder2: TextEncoder2}

// loraMerges checks that every module of every LoRA targets a component
// f has, and returns the merge for each component that has modules.
func loraMerges(f *Folder, loras []lora.Weighted) (map[string]*LoRAMerge, error) {
	out := map[string]*LoRAMerge{}
	for _, w := range loras {
		counts := w.LoRA.Components()
		names := make([]string, 0, len(counts))
		for c := range counts {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			comp := loraComponents[c]
			if comp == "" || (comp == TextEncoder2 && !f.SDXL) {
				hint := ""
				if c == lora.TextEncoder2 {
					hint = "; a LoRA for a second text encoder was made for SDXL"
				}
				return nil, fmt.Errorf("LoRA %s has %d modules for %s, which model %s does not have%s: use a LoRA trained for this model's base", w.Name, counts[c], c, f.Dir, hint)
			}
			m := out[comp]
			if m == nil {
				m = &LoRAMerge{Component: c}
				out[comp] = m
			}
			m.LoRAs = append(m.LoRAs, w)
		}
	}
	return out, nil
}

// readMergedGraph is os.ReadFile for a graph, or the merged graph when
// spec asks for LoRAs, with the folder ONNX Runtime must read the
// external weights from ("" when the graph is read as it is and its
// weights are beside it).
func readMergedGraph(spec SessionSpec) ([]byte, string, error) {
	if spec.LoRA != nil {
		return mergedGraph(spec.Path, spec.ExternalDataDir, spec.LoRA, maxInlineGraph)
	}
	data, err := os.ReadFile(spec.Path)
	if err != nil {
		return nil, "", fmt.Errorf("load %s: %w", spec.Path, err)
	}
	return data, spec.ExternalDataDir, nil
}
