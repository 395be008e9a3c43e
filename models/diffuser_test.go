package models

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-dev/kiln/models/onnx"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// shared holds, for the tests that only read them, one generated folder
// per flavour and one Runtime, so each graph is read and loaded once per
// test binary.
var shared struct {
	mu      sync.Mutex
	root    string
	rt      *Runtime
	folders map[testmodels.Flavour]*Folder
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.rt != nil {
		shared.rt.Close()
	}
	if shared.root != "" {
		os.RemoveAll(shared.root)
	}
	os.Exit(code)
}

// sharedDiffuser returns a Diffuser on the shared Runtime for a shared,
// read-only folder of flavour fl.
func sharedDiffuser(t testing.TB, fl testmodels.Flavour) *Diffuser {
	t.Helper()
	lib := testLibrary(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.root == "" {
		root, err := os.MkdirTemp("", "kiln-models-test-")
		if err != nil {
			t.Fatal(err)
		}
		shared.root = root
		shared.folders = map[testmodels.Flavour]*Folder{}
		rt, err := NewRuntime(RuntimeOptions{Library: lib, Threads: 1, CacheDir: filepath.Join(root, "cache")})
		if err != nil {
			t.Fatal(err)
		}
		shared.rt = rt
	}
	f, ok := shared.folders[fl]
	if !ok {
		dir := filepath.Join(shared.root, string(fl))
		if err := testmodels.Write(dir, fl, testmodels.Options{}); err != nil {
			t.Fatal(err)
		}
		var err error
		if f, err = OpenFolder(dir); err != nil {
			t.Fatal(err)
		}
		f.CacheDir = filepath.Join(shared.root, "cache")
		shared.folders[fl] = f
	}
	d, err := NewDiffuser(shared.rt, f, DiffuserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// flavourFolder writes a generated test model of flavour fl into a fresh
// folder and opens it.
func flavourFolder(t testing.TB, fl testmodels.Flavour) (*Folder, testmodels.Spec) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), string(fl))
	if err := testmodels.Write(dir, fl, testmodels.Options{}); err != nil {
		t.Fatal(err)
	}
	spec, err := testmodels.SpecFor(fl)
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.CacheDir = t.TempDir()
	return f, spec
}

// pseudo fills n values in [-1, 1) deterministically.
func pseudo(n int, seed uint32) []float32 {
	out := make([]float32, n)
	s := seed*2654435761 + 1
	for i := range out {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		out[i] = float32(s%20000)/10000 - 1
	}
	return out
}

func tensor(seed uint32, shape ...int64) sampler.Tensor {
	return sampler.Tensor{Shape: shape, Data: pseudo(numel(shape), seed)}
}

func sameShape(a []int64, b ...int64) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func allFinite(t sampler.Tensor) bool {
	for _, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// unetInput builds a batch-2 UNet call with whatever extra conditioning
// the model's Info asks for.
func unetInput(info sampler.Info, cond sampler.Cond, t float64, h, w int64) sampler.UNetInput {
	in := sampler.UNetInput{
		Latents:  tensor(7, 2, int64(info.LatentChannels), h, w),
		Timestep: t,
		Cond:     cond,
	}
	if info.SDXL {
		size := float32(h * int64(info.VAEFactor))
		in.TimeIDs = sampler.Tensor{Shape: []int64{2, 6}, Data: []float32{size, size, 0, 0, size, size, size, size, 0, 0, size, size}}
	}
	if info.TimestepCondDim > 0 {
		in.TimestepCond = tensor(9, 2, int64(info.TimestepCondDim))
	}
	return in
}

func TestDiffuserFlavours(t *testing.T) {
	ctx := context.Background()
	for _, fl := range testmodels.Flavours() {
		t.Run(string(fl), func(t *testing.T) {
			d := sharedDiffuser(t, fl)
			spec, err := testmodels.SpecFor(fl)
			if err != nil {
				t.Fatal(err)
			}
			info := d.Info()
			sdxl := spec.TextEmbedsDim > 0
			if info.LatentChannels != spec.LatentChannels || info.VAEFactor != 8 || info.ScalingFactor != spec.VAEScale ||
				info.SDXL != sdxl || info.TimestepCondDim != spec.TimeCondDim || info.DefaultSize != 8*spec.SampleSize ||
				info.Provider != ProviderCPU || info.Scheduler == nil {
				t.Errorf("info %+v does not match spec %+v", info, spec)
			}
			if got, _ := info.Scheduler["_class_name"].(string); got != spec.Scheduler {
				t.Errorf("scheduler %q, want %q", got, spec.Scheduler)
			}

			// Text.
			cond, warnings, err := d.EncodeText(ctx, []string{"a photo of a cat", ""})
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings %v", warnings)
			}
			width := int64(spec.TextDim + spec.Text2Dim)
			if !sameShape(cond.Hidden.Shape, 2, 77, width) || len(cond.Hidden.Data) != int(2*77*width) || !allFinite(cond.Hidden) {
				t.Errorf("hidden states %v (%d values)", cond.Hidden.Shape, len(cond.Hidden.Data))
			}
			if sdxl {
				if !sameShape(cond.Pooled.Shape, 2, int64(spec.TextEmbedsDim)) || !allFinite(cond.Pooled) {
					t.Errorf("pooled %v", cond.Pooled.Shape)
				}
			} else if cond.Pooled.Shape != nil {
				t.Errorf("pooled %v for a non-SDXL model", cond.Pooled.Shape)
			}
			if maxAbsDiff(cond.Hidden.Data[:77*width], cond.Hidden.Data[77*width:]) == 0 {
				t.Error("two different prompts encode the same")
			}

			// UNet at two timesteps.
			const h, w = 8, 12
			out1, err := d.UNet(ctx, unetInput(info, cond, 999, h, w))
			if err != nil {
				t.Fatal(err)
			}
			out2, err := d.UNet(ctx, unetInput(info, cond, 1, h, w))
			if err != nil {
				t.Fatal(err)
			}
			if !sameShape(out1.Shape, 2, 4, h, w) || !allFinite(out1) {
				t.Errorf("unet output %v", out1.Shape)
			}
			if maxAbsDiff(out1.Data, out2.Data) == 0 {
				t.Error("unet output does not depend on the timestep")
			}

			// VAE.
			img, err := d.DecodeLatents(ctx, tensor(3, 1, 4, h, w))
			if err != nil {
				t.Fatal(err)
			}
			if !sameShape(img.Shape, 1, 3, 8*h, 8*w) {
				t.Errorf("decoded shape %v", img.Shape)
			}
			for _, v := range img.Data {
				if v < -1 || v > 1 || math.IsNaN(float64(v)) {
					t.Fatalf("decoded value %v outside [-1, 1]", v)
				}
			}
			mean, logvar, err := d.EncodeImage(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			if !sameShape(mean.Shape, 1, 4, h, w) || !allFinite(mean) {
				t.Errorf("mean %v", mean.Shape)
			}
			if fl == testmodels.DiffusersLegacy {
				if logvar.Shape != nil {
					t.Errorf("latent_sample encoder gave a log-variance %v", logvar.Shape)
				}
			} else if !sameShape(logvar.Shape, 1, 4, h, w) || !allFinite(logvar) {
				t.Errorf("logvar %v", logvar.Shape)
			}
		})
	}
}

// TestFP16MatchesFP32 runs the fp16 flavour next to the optimum flavour it
// is a half-precision copy of: float16 conversion in and out (and the
// rank-0 float16 timestep variant) must give the fp32 model's numbers to
// fp16 precision.
func TestFP16MatchesFP32(t *testing.T) {
	ctx := context.Background()
	d32 := sharedDiffuser(t, testmodels.Optimum)
	d16 := sharedDiffuser(t, testmodels.FP16)
	prompts := []string{"a photo of a cat", "moss on stone"}
	c32, _, err := d32.EncodeText(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	c16, _, err := d16.EncodeText(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	diff := func(name string, a, b sampler.Tensor, tol float64) {
		t.Helper()
		if !sameShape(a.Shape, b.Shape...) {
			t.Fatalf("%s: shapes %v and %v", name, a.Shape, b.Shape)
		}
		d := maxAbsDiff(a.Data, b.Data)
		t.Logf("%s: max |fp32 - fp16| = %.2g", name, d)
		if d > tol {
			t.Errorf("%s: fp16 differs from fp32 by %g (tolerance %g)", name, d, tol)
		}
	}
	diff("text", c32.Hidden, c16.Hidden, 0.05)
	in := unetInput(d32.Info(), c32, 501, 8, 8)
	u32, err := d32.UNet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	u16, err := d16.UNet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	diff("unet", u32, u16, 0.05)
	lat := tensor(5, 1, 4, 8, 8)
	i32, err := d32.DecodeLatents(ctx, lat)
	if err != nil {
		t.Fatal(err)
	}
	i16, err := d16.DecodeLatents(ctx, lat)
	if err != nil {
		t.Fatal(err)
	}
	diff("vae decoder", i32, i16, 0.05)
	m32, l32, err := d32.EncodeImage(ctx, i32)
	if err != nil {
		t.Fatal(err)
	}
	m16, l16, err := d16.EncodeImage(ctx, i32)
	if err != nil {
		t.Fatal(err)
	}
	diff("vae encoder mean", m32, m16, 0.05)
	diff("vae encoder logvar", l32, l16, 0.05)
}

func TestEncodeTextTruncationWarning(t *testing.T) {
	d := sharedDiffuser(t, testmodels.Optimum)
	long := strings.Repeat("stone ", 100)
	_, warnings, err := d.EncodeText(context.Background(), []string{"short", long})
	if err != nil {
		t.Fatal(err)
	}
	want := `prompt truncated to 77 tokens: "` + long[:57] + `..."`
	if len(warnings) != 1 || warnings[0] != want {
		t.Errorf("warnings %q, want [%q]", warnings, want)
	}
}

func TestDiffuserInputErrors(t *testing.T) {
	ctx := context.Background()
	d := sharedDiffuser(t, testmodels.Optimum)
	dxl := sharedDiffuser(t, testmodels.SDXL)
	cond, _, _ := d.EncodeText(ctx, []string{"a", "b"})
	condXL, _, _ := dxl.EncodeText(ctx, []string{"a", "b"})

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"no prompts", func() error { _, _, err := d.EncodeText(ctx, nil); return err }, "encode text: no prompts"},
		{"bad latents", func() error {
			_, err := d.UNet(ctx, sampler.UNetInput{Latents: tensor(1, 2, 4, 8), Cond: cond})
			return err
		}, "unet: latents have shape [2 4 8] and 64 values, want [batch, channels, height, width]"},
		{"batch mismatch", func() error {
			in := unetInput(d.Info(), cond, 10, 8, 8)
			in.Latents = tensor(1, 3, 4, 8, 8)
			_, err := d.UNet(ctx, in)
			return err
		}, "unet: encoder_hidden_states (Cond.Hidden) has shape [2 77 32] and 4928 values, want rank 3 with batch 3"},
		{"sdxl without time ids", func() error {
			in := unetInput(dxl.Info(), condXL, 10, 8, 8)
			in.TimeIDs = sampler.Tensor{}
			_, err := dxl.UNet(ctx, in)
			return err
		}, "unet: time_ids (TimeIDs: original size, crop top-left, target size) is missing"},
		{"wrong text width", func() error {
			in := unetInput(d.Info(), condXL, 10, 8, 8)
			_, err := d.UNet(ctx, in)
			return err
		}, `unet/model.onnx input "encoder_hidden_states" has fixed shape [? ? 32], kiln has [2 77 80] (the export fixed this size; re-export with dynamic axes or use the size it was exported for)`},
		{"image not a multiple of 8", func() error {
			_, _, err := d.EncodeImage(ctx, tensor(1, 1, 3, 60, 64))
			return err
		}, "vae encoder: image size 64x60 is not a multiple of 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestDiffuserConcurrent(t *testing.T) {
	ctx := context.Background()
	d := sharedDiffuser(t, testmodels.FP16)
	cond, _, err := d.EncodeText(ctx, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := d.UNet(ctx, unetInput(d.Info(), cond, 500, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				got, err := d.UNet(ctx, unetInput(d.Info(), cond, 500, 8, 8))
				if err != nil {
					t.Error(err)
					return
				}
				if maxAbsDiff(got.Data, want.Data) != 0 {
					t.Error("concurrent UNet calls disagree")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestScalarFloat16Timestep runs a UNet whose timestep is a rank-0 float16
// input (as current optimum fp16 exports declare it), which onnxruntime_go
// cannot feed directly: the Diffuser must run it through the
// VariantScalarF32 rewrite in kiln's cache, which reads the original's
// external weights from their folder. The stand-in UNet computes sample*timestep + mean(w).
func TestScalarFloat16Timestep(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	for _, external := range []bool{true, false} {
		t.Run(fmt.Sprintf("external weights %v", external), func(t *testing.T) {
			testScalarFloat16Timestep(t, rt, external)
		})
	}
}

// scalarF16UNet is the stand-in UNet of TestScalarFloat16Timestep: its
// timestep is a rank-0 float16 input, and it computes
// sample*timestep + mean(w) with w a float16 weight of 0.5s.
func scalarF16UNet(t *testing.T) *onnx.Model {
	t.Helper()
	b := onnx.NewBuilder("unet")
	sample := b.Input("sample", onnx.Float16, "batch_size", 4, "height", "width")
	ts := b.Input("timestep", onnx.Float16)
	b.Input("encoder_hidden_states", onnx.Float16, "batch_size", "sequence_length", 32)
	w := b.Initializer(onnx.NewFloat16Tensor("w", []int64{1024}, func() []float32 {
		v := make([]float32, 1024)
		for i := range v {
			v[i] = 0.5
		}
		return v
	}()))
	mean := b.Op("ReduceMean", []string{w}, onnx.IntAttr("keepdims", 0))
	b.Output(b.Add(b.Mul(sample, ts), mean), "out_sample", onnx.Float16, "batch_size", 4, "height", "width")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testScalarFloat16Timestep(t *testing.T, rt *Runtime, external bool) {
	f, _ := flavourFolder(t, testmodels.FP16)
	m := scalarF16UNet(t)
	var err error
	if external {
		err = m.SaveExternal(f.Path(UNet), onnx.ExternalOptions{File: "model.onnx_data"})
	} else {
		err = m.Save(f.Path(UNet))
	}
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(f.Path(UNet))

	d, err := NewDiffuser(rt, f, DiffuserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.unet.spec.Variant != VariantScalarF32 || !strings.HasPrefix(d.unet.spec.Path, filepath.Join(rt.cacheDir, "graphs")+string(filepath.Separator)) {
		t.Fatalf("unet session %+v, want the %s variant in kiln's cache", d.unet.spec, VariantScalarF32)
	}
	wantDir := ""
	if external {
		wantDir = filepath.Join(f.Dir, "unet")
	}
	if d.unet.spec.ExternalDataDir != wantDir {
		t.Errorf("variant reads external weights from %q, want %q", d.unet.spec.ExternalDataDir, wantDir)
	}
	if after, _ := os.ReadFile(f.Path(UNet)); string(after) != string(before) {
		t.Error("the model folder's unet was modified")
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
		want := x*3 + 0.5
		if math.Abs(float64(out.Data[i]-want)) > 4e-3 {
			t.Fatalf("out[%d] = %v, want %v", i, out.Data[i], want)
		}
	}
	// A second Diffuser reuses the variant on disk.
	d2, err := NewDiffuser(rt, f, DiffuserOptions{})
	if err != nil || d2.unet.spec.Path != d.unet.spec.Path {
		t.Errorf("second diffuser: %v, variant %s", err, d2.unet.spec.Path)
	}
}

// TestBadModelFiles damages generated model folders the ways downloads and
// copies do and checks that each error names the file and what to do.
func TestBadModelFiles(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	tests := []struct {
		name   string
		flav   testmodels.Flavour
		damage func(dir string) string // returns the file the error must name
		want   string                  // after "load <graph>: "
	}{
		{"missing external weights", testmodels.Optimum, func(dir string) string {
			p := filepath.Join(dir, "unet", "model.onnx_data")
			os.Remove(p)
			return p
		}, "the external weights file %s is missing: it must stay next to the .onnx file, under the name the export gave it"},
		{"truncated external weights", testmodels.DiffusersLegacy, func(dir string) string {
			p := filepath.Join(dir, "unet", "weights.pb")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)/2], 0o644)
			return p
		}, "its external weights are truncated or do not belong to this graph: re-export or re-download the model"},
		{"truncated graph", testmodels.Optimum, func(dir string) string {
			p := filepath.Join(dir, "vae_decoder", "model.onnx")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)-100], 0o644)
			return p
		}, "not a valid ONNX model (truncated or corrupt file?): re-export or re-download it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := flavourFolder(t, tt.flav)
			file := tt.damage(f.Dir)
			graph := file
			if !strings.HasSuffix(graph, ".onnx") {
				graph = filepath.Join(filepath.Dir(file), "model.onnx")
			}
			want := "load " + graph + ": " + strings.ReplaceAll(tt.want, "%s", file) + " ("
			_, err := NewDiffuser(rt, f, DiffuserOptions{})
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error:\n%v\nwant prefix:\n%s", err, want)
			}
		})
	}
}

// TestVAEFactorMismatch gives the Diffuser a VAE factor the graphs do not
// have (as a VAE config.json with the wrong block_out_channels does): the
// VAE's preallocated output then has the wrong shape, and the error says
// which shape the graph made, which kiln expected, and what to fix.
func TestVAEFactorMismatch(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	f, _ := flavourFolder(t, testmodels.Optimum)
	f.VAEFactor = 4
	d, err := NewDiffuser(rt, f, DiffuserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const hint = ": kiln takes the VAE scale factor 4 from block_out_channels in the VAE's config.json (2^(entries-1), as diffusers does; 8 without a config), and the graph scales differently: fix the config"
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"decoder", func() error {
			_, err := d.DecodeLatents(ctx, tensor(1, 1, 4, 8, 8))
			return err
		}, "vae_decoder/model.onnx produced an output of shape [1,3,64,64] where kiln expected [1,3,32,32]" + hint},
		{"encoder", func() error {
			_, _, err := d.EncodeImage(ctx, tensor(1, 1, 3, 64, 64))
			return err
		}, "vae_encoder/model.onnx produced an output of shape [1,8,8,8] where kiln expected [1,8,16,16]" + hint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || err.Error() != tc.want {
				t.Errorf("got error\n  %v\nwant\n  %s", err, tc.want)
			}
		})
	}
}

// TestUNetOut checks the sampler's output buffer: the prediction lands in
// UNetInput.Out when it is large enough, equals the prediction made into
// a fresh buffer, and a too-small Out or one that overlaps the latents is
// left alone.
func TestUNetOut(t *testing.T) {
	ctx := context.Background()
	for _, fl := range testmodels.Flavours() {
		t.Run(string(fl), func(t *testing.T) {
			d := sharedDiffuser(t, fl)
			cond, _, err := d.EncodeText(ctx, []string{"moss", "stone"})
			if err != nil {
				t.Fatal(err)
			}
			in := unetInput(d.Info(), cond, 400, 8, 8)
			want, err := d.UNet(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			n := len(want.Data)
			for _, tc := range []struct {
				name   string
				out    []float32
				usesIt bool
			}{
				{"exact", make([]float32, n), true},
				{"larger", make([]float32, n+5), true},
				{"again", nil, true}, // the same buffer as "larger", a kept view
				{"too small", make([]float32, n-1), false},
				{"overlaps latents", in.Latents.Data, false},
			} {
				if tc.name == "again" {
					tc.out = in.Out
				}
				in.Out = tc.out
				before := append([]float32(nil), in.Latents.Data...)
				got, err := d.UNet(ctx, in)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if uses := len(got.Data) > 0 && len(tc.out) > 0 && &got.Data[0] == &tc.out[0]; uses != tc.usesIt {
					t.Errorf("%s: prediction written into Out: %v, want %v", tc.name, uses, tc.usesIt)
				}
				if !sameShape(got.Shape, want.Shape...) || len(got.Data) != n || maxAbsDiff(got.Data, want.Data) != 0 {
					t.Errorf("%s: prediction %v differs from the one made into a fresh buffer %v", tc.name, got.Shape, want.Shape)
				}
				if maxAbsDiff(before, in.Latents.Data) != 0 {
					t.Errorf("%s: the latents were overwritten", tc.name)
				}
			}
		})
	}
}

// TestUNetConditioningReused changes the conditioning between calls in the
// buffers of the previous call, as a sampler that reuses its buffers may:
// every prediction must follow the values given, never a conversion or
// tensor kept from the call before.
func TestUNetConditioningReused(t *testing.T) {
	ctx := context.Background()
	for _, fl := range []testmodels.Flavour{testmodels.Optimum, testmodels.FP16, testmodels.SDXL, testmodels.LCM} {
		t.Run(string(fl), func(t *testing.T) {
			d := sharedDiffuser(t, fl)
			condA, _, err := d.EncodeText(ctx, []string{"moss", "stone"})
			if err != nil {
				t.Fatal(err)
			}
			condB, _, err := d.EncodeText(ctx, []string{"lava", "ice"})
			if err != nil {
				t.Fatal(err)
			}
			in := unetInput(d.Info(), condA, 400, 8, 8)
			in.Out = make([]float32, len(in.Latents.Data))
			// Buffers the test owns and rewrites in place.
			in.Cond.Hidden.Data = append([]float32(nil), condA.Hidden.Data...)
			if len(condA.Pooled.Data) > 0 {
				in.Cond.Pooled.Data = append([]float32(nil), condA.Pooled.Data...)
			}
			// predict runs a Diffuser that has kept nothing yet.
			predict := func(in sampler.UNetInput) []float32 {
				t.Helper()
				in.Out = make([]float32, len(in.Latents.Data))
				out, err := sharedDiffuser(t, fl).UNet(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				return out.Data
			}
			for step, c := range []sampler.Cond{condA, condA, condB, condB, condA} {
				copy(in.Cond.Hidden.Data, c.Hidden.Data)
				copy(in.Cond.Pooled.Data, c.Pooled.Data)
				if in.TimestepCond.Data != nil {
					in.TimestepCond.Data[0] = float32(step) / 10
				}
				in.Latents.Data[step] += 0.25 // and the latents, as every step does
				out, err := d.UNet(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				ref := in
				ref.Cond = sampler.Cond{Hidden: sampler.Tensor{Shape: c.Hidden.Shape, Data: append([]float32(nil), c.Hidden.Data...)}}
				if len(c.Pooled.Data) > 0 {
					ref.Cond.Pooled = sampler.Tensor{Shape: c.Pooled.Shape, Data: append([]float32(nil), c.Pooled.Data...)}
				}
				ref.Latents.Data = append([]float32(nil), in.Latents.Data...)
				if in.TimestepCond.Data != nil {
					ref.TimestepCond.Data = append([]float32(nil), in.TimestepCond.Data...)
				}
				if diff := maxAbsDiff(out.Data, predict(ref)); diff != 0 {
					t.Fatalf("step %d: the prediction differs by %g from a fresh Diffuser's on the same values", step, diff)
				}
			}
		})
	}
}

// TestDecodeRecycle checks that a decode buffer handed back through
// Recycle is written into by the next decode of that size, with the same
// pixels as a decode into fresh memory, and that a larger decode does not
// take a buffer too small for it.
func TestDecodeRecycle(t *testing.T) {
	d := sharedDiffuser(t, testmodels.Optimum)
	ctx := context.Background()
	a, err := d.DecodeLatents(ctx, tensor(7, 1, 4, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(a.Data)
	d.Recycle(a)
	b, err := d.DecodeLatents(ctx, tensor(7, 1, 4, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	if &b.Data[0] != &a.Data[0] {
		t.Error("the second decode did not reuse the recycled buffer")
	}
	if !slices.Equal(b.Data, want) {
		t.Error("a decode into a recycled buffer gave other values")
	}
	d.Recycle(b)
	big, err := d.DecodeLatents(ctx, tensor(7, 1, 4, 16, 16))
	if err != nil {
		t.Fatal(err)
	}
	if len(big.Data) != 3*128*128 || &big.Data[0] == &b.Data[0] {
		t.Errorf("a larger decode got %d values in the small recycled buffer", len(big.Data))
	}
}
