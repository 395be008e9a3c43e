package models

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-dev/kiln/models/onnx"
	ort "github.com/yalue/onnxruntime_go"
)

// VariantScalarF32 names the graph variant whose rank-0 float16 inputs are
// float32 inputs followed by a Cast. Current optimum fp16 exports declare
// the UNet's timestep as a float16 scalar, and onnxruntime_go v1.27.0 can
// create rank-0 tensors only of Go number types (float16 is not one), so
// kiln feeds such graphs through this variant. The original file is never
// modified: the variant lives in kiln's cache and links to the original's
// external weights instead of copying them.
const VariantScalarF32 = "scalar-f32"

// scalarF16Inputs lists the rank-0 float16 inputs of a graph.
func scalarF16Inputs(g GraphInfo) []string {
	var out []string
	for _, in := range g.Inputs {
		if in.Rank() == 0 && in.Type == ort.TensorElementDataTypeFloat16 {
			out = append(out, in.Name)
		}
	}
	return out
}

// scalarF32Variant returns the VariantScalarF32 rewrite of the model at
// src, creating it in cacheDir if needed, and the folder its external
// weights are in ("" when it has none): the original's, since the variant
// shares them (see SessionSpec.ExternalDataDir). That is srcData when the
// original itself reads its weights from another folder (a graph variant
// whose weights could not be linked beside it), else the original's own
// folder. The variant is named by a hash of the source path, size,
// modification time and the inputs rewritten, so an edited model gets a
// new variant; the weights' folder is not part of the name, because the
// variant refers to its weights by file name only.
func scalarF32Variant(cacheDir, src, srcData string, inputs []string) (path, externalDir string, err error) {
	if cacheDir == "" {
		return "", "", fmt.Errorf("%s declares float16 scalar inputs (%s), which kiln must rewrite into a graph variant in its cache folder, but no cache folder is set: set KILN_CACHE_HOME", src, strings.Join(inputs, ", "))
	}
	abs, fi, err := statModel(src)
	if err != nil {
		return "", "", err
	}
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d\x00%s\x00%s", abs, fi.Size(), fi.ModTime().UnixNano(), VariantScalarF32, strings.Join(inputs, ","))))
	// The name says whether the graph has external weights, so a variant
	// made earlier is used without reading the (possibly large) original.
	base := filepath.Join(cacheDir, "graphs", hex.EncodeToString(h[:12]))
	dataDir := srcData
	if dataDir == "" {
		dataDir = filepath.Dir(abs)
	}
	if _, err := os.Stat(base + "-ext.onnx"); err == nil {
		return base + "-ext.onnx", dataDir, nil
	}
	if _, err := os.Stat(base + ".onnx"); err == nil {
		return base + ".onnx", "", nil
	}

	m, err := onnx.Load(abs)
	if err != nil {
		return "", "", fmt.Errorf("rewrite %s: %w", src, err)
	}
	dst := base + ".onnx"
	if len(m.ExternalFiles()) > 0 {
		externalDir = dataDir
		dst = base + "-ext.onnx"
	}
	g := m.Graph
	if g == nil {
		return "", "", fmt.Errorf("rewrite %s: the model has no graph", src)
	}
	b, err := onnx.Extend(m)
	if err != nil {
		return "", "", fmt.Errorf("rewrite %s: %w", src, err)
	}
	var casts []*onnx.Node
	for _, name := range inputs {
		in := g.Input(name)
		if in == nil || in.Type == nil || in.Type.Tensor == nil {
			return "", "", fmt.Errorf("rewrite %s: input %q not found", src, name)
		}
		inner := b.Namer().Name(name + "_fp16")
		g.RenameValue(name, inner)
		in.Name = name // RenameValue renamed the graph input too
		in.Type.Tensor.ElemType = onnx.Float
		casts = append(casts, &onnx.Node{
			OpType:     "Cast",
			Name:       b.Namer().Name("kiln_cast_" + name),
			Inputs:     []string{name},
			Outputs:    []string{inner},
			Attributes: []*onnx.Attribute{onnx.IntAttr("to", int64(onnx.Float16))},
		})
	}
	g.InsertNodes(0, casts...)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", "", fmt.Errorf("rewrite %s: %w", src, err)
	}
	// Save writes atomically, so a concurrent kiln or a crash never leaves
	// half a variant behind.
	if err := m.Save(dst); err != nil {
		return "", "", fmt.Errorf("rewrite %s: %w", src, err)
	}
	return dst, externalDir, nil
}
