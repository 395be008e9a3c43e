package models

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/onnx"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// copyGraphAlone copies the graph file src into a new temporary folder
// without its external weights, as a graph variant kept in kiln's cache
// is when its weights could not be hard-linked beside it (the cache is on
// another file system), and returns the copy's path.
func copyGraphAlone(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "variant", "model.onnx")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestGraphData runs a UNet graph whose external weights live in another
// folder than the graph file, through DiffuserOptions.GraphData: the
// session must read them from there and predict what the original does.
func TestGraphData(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	ctx := context.Background()
	f, _ := flavourFolder(t, testmodels.Optimum)
	unetDir := filepath.Join(f.Dir, UNet)
	if _, err := os.Stat(filepath.Join(unetDir, "model.onnx_data")); err != nil {
		t.Fatalf("the generated UNet should keep its weights in model.onnx_data: %v", err)
	}
	moved := copyGraphAlone(t, f.Path(UNet))

	orig, err := NewDiffuser(rt, f, DiffuserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cond, _, err := orig.EncodeText(ctx, []string{"moss", "stone"})
	if err != nil {
		t.Fatal(err)
	}
	in := unetInput(orig.Info(), cond, 300, 8, 8)
	want, err := orig.UNet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}

	d, err := NewDiffuser(rt, f, DiffuserOptions{Graphs: map[string]string{UNet: moved}, Variant: "moved", GraphData: map[string]string{UNet: unetDir}})
	if err != nil {
		t.Fatal(err)
	}
	if d.unet.spec.Path != moved || d.unet.spec.ExternalDataDir != unetDir {
		t.Errorf("unet session %+v, want %s with weights from %s", d.unet.spec, moved, unetDir)
	}
	got, err := d.UNet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := maxAbsDiff(got.Data, want.Data); diff != 0 {
		t.Errorf("the UNet with its weights in another folder differs from the original by %g", diff)
	}
	for _, k := range rt.PooledSessions() {
		if k.Path == moved && !strings.Contains(k.Variant, "data="+unetDir) {
			t.Errorf("pooled session %+v does not name its weights folder", k)
		}
	}

	// Without GraphData the graph's weights are missing, and the error
	// says which file and where it must be.
	_, err = NewDiffuser(rt, f, DiffuserOptions{Graphs: map[string]string{UNet: moved}, Variant: "moved"})
	if err == nil || !strings.Contains(err.Error(), "model.onnx_data") || !strings.Contains(err.Error(), moved) {
		t.Errorf("without GraphData: got %v, want an error naming %s and its missing model.onnx_data", err, moved)
	}
}

// TestGraphDataScalarF32 is TestGraphData for an fp16 UNet with a rank-0
// float16 timestep: kiln derives its float32-timestep variant from the
// moved graph, and that variant must read the weights from the GraphData
// folder too.
func TestGraphDataScalarF32(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	f, _ := flavourFolder(t, testmodels.FP16)
	// The original, with its weights, in a folder of its own.
	origDir := filepath.Join(t.TempDir(), "unet")
	if err := os.MkdirAll(origDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := scalarF16UNet(t).SaveExternal(filepath.Join(origDir, "model.onnx"), onnx.ExternalOptions{File: "model.onnx_data"}); err != nil {
		t.Fatal(err)
	}
	moved := copyGraphAlone(t, filepath.Join(origDir, "model.onnx"))

	d, err := NewDiffuser(rt, f, DiffuserOptions{Graphs: map[string]string{UNet: moved}, Variant: "tile-xy", GraphData: map[string]string{UNet: origDir}})
	if err != nil {
		t.Fatal(err)
	}
	spec := d.unet.spec
	if spec.Variant != "tile-xy+"+VariantScalarF32 || !strings.HasPrefix(spec.Path, filepath.Join(rt.cacheDir, "graphs")+string(filepath.Separator)) {
		t.Fatalf("unet session %+v, want the %s variant of the moved graph in kiln's cache", spec, VariantScalarF32)
	}
	if spec.ExternalDataDir != origDir {
		t.Errorf("the %s variant reads its weights from %q, want %q", VariantScalarF32, spec.ExternalDataDir, origDir)
	}
	ctx := context.Background()
	cond, _, err := d.EncodeText(ctx, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	in := unetInput(d.Info(), cond, 3, 8, 8)
	out, err := d.UNet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range in.Latents.Data {
		if want := x*3 + 0.5; math.Abs(float64(out.Data[i]-want)) > 4e-3 {
			t.Fatalf("out[%d] = %v, want %v", i, out.Data[i], want)
		}
	}
	// A second Diffuser finds the variant in the cache and still reads the
	// weights from the GraphData folder.
	d2, err := NewDiffuser(rt, f, DiffuserOptions{Graphs: map[string]string{UNet: moved}, Variant: "tile-xy", GraphData: map[string]string{UNet: origDir}})
	if err != nil {
		t.Fatal(err)
	}
	if s2 := d2.unet.spec; s2.Path != spec.Path || s2.ExternalDataDir != spec.ExternalDataDir || s2.Variant != spec.Variant {
		t.Errorf("second Diffuser: unet session %+v, want %+v", d2.unet.spec, spec)
	}
}

func TestGraphDataErrors(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	f, _ := flavourFolder(t, testmodels.Optimum)
	missing := filepath.Join(t.TempDir(), "gone")
	for _, tc := range []struct {
		name string
		data map[string]string
		want string
	}{
		{"unknown component", map[string]string{"unet2": f.Dir}, `DiffuserOptions.GraphData names "unet2", which is not a model component (components: text_encoder, text_encoder_2, unet, vae_decoder, vae_encoder)`},
		{"missing folder", map[string]string{UNet: missing}, "the external weights folder " + missing + " given for unet is not a folder kiln can read"},
		{"a file", map[string]string{UNet: f.Path(UNet)}, "the external weights folder " + f.Path(UNet) + " given for unet is not a folder kiln can read (not a folder)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDiffuser(rt, f, DiffuserOptions{GraphData: tc.data})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
