package tiling_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/onnx"
	"github.com/kiln-dev/kiln/models/testmodels"
	"github.com/kiln-dev/kiln/models/tiling"
)

// writeFlavour generates a test model folder.
func writeFlavour(t testing.TB, fl testmodels.Flavour) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), string(fl))
	if err := testmodels.Write(dir, fl, testmodels.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// snapshot records every file of a folder: content hash, size, mode and
// modification time.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%x %d %v %d", sha256.Sum256(data), fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkUnchanged(t testing.TB, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("model folder had %d files, now %d", len(before), len(after))
	}
	for p, s := range before {
		if after[p] != s {
			t.Errorf("%s changed: %s -> %s", p, s, after[p])
		}
	}
}

// unetFeeds are inputs for a test UNet with float32 sample [1,4,h,w],
// rank-0 float32 timestep and [1,77,32] text (the optimum flavour).
func unetFeeds(h, w int64) []feed {
	return []feed{
		{[]int64{1, 4, h, w}, pseudo(int(4*h*w), 11)},
		{[]int64{}, []float32{500}},
		{[]int64{1, 77, 32}, pseudo(77*32, 12)},
	}
}

// TestVariantSharesWeights builds the variant of an optimum UNet, whose
// weights are in model.onnx_data: the variant must hard-link that file
// (same inode, nothing copied), load in ONNX Runtime, leave the model
// folder byte for byte as it was, and be found again without a rebuild.
func TestVariantSharesWeights(t *testing.T) {
	rt := newRuntime(t)
	dir := writeFlavour(t, testmodels.Optimum)
	before := snapshot(t, dir)
	cache := t.TempDir()
	src := filepath.Join(dir, "unet", "model.onnx")

	g, err := tiling.Variant(context.Background(), src, tiling.XY, cache)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.Path, filepath.Join(cache, "tiling")+string(filepath.Separator)) {
		t.Errorf("variant at %s, want it inside the cache", g.Path)
	}
	if g.ExternalDataDir != "" {
		t.Fatalf("weights were not linked (ExternalDataDir %s)", g.ExternalDataDir)
	}
	if g.Rewritten != 5 {
		t.Errorf("rewrote %d convolutions, want the test UNet's 5", g.Rewritten)
	}
	orig, err := os.Stat(filepath.Join(dir, "unet", "model.onnx_data"))
	if err != nil {
		t.Fatal(err)
	}
	linked, err := os.Stat(filepath.Join(filepath.Dir(g.Path), "model.onnx_data"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(orig, linked) {
		t.Error("the variant's model.onnx_data is a copy, not a link to the original")
	}

	out := runFile(t, rt, models.SessionSpec{Path: g.Path}, unetFeeds(8, 8)...)
	if !sameShape(out[0].shape, []int64{1, 4, 8, 8}) {
		t.Errorf("output shape %v", out[0].shape)
	}
	checkUnchanged(t, before, snapshot(t, dir))

	// Found again: same file, not rewritten.
	st1, _ := os.Stat(g.Path)
	g2, err := tiling.Variant(context.Background(), src, tiling.XY, cache)
	if err != nil || g2.Path != g.Path {
		t.Fatalf("second Variant: %v, %+v", err, g2)
	}
	if st2, _ := os.Stat(g.Path); !st2.ModTime().Equal(st1.ModTime()) || !os.SameFile(st1, st2) {
		t.Error("the variant was rebuilt although nothing changed")
	}
	// Other axes are another variant.
	gx, err := tiling.Variant(context.Background(), src, tiling.X, cache)
	if err != nil || gx.Path == g.Path {
		t.Fatalf("x variant: %v, %+v", err, gx)
	}
	checkUnchanged(t, before, snapshot(t, dir))
}

// TestVariantWithoutLinks makes hard links fail, as they do when the cache
// is on another file system: the variant then reads the weights from the
// original folder (ExternalDataDir), loads that way in ONNX Runtime and
// computes what the linked variant computes.
func TestVariantWithoutLinks(t *testing.T) {
	rt := newRuntime(t)
	dir := writeFlavour(t, testmodels.DiffusersLegacy) // weights.pb
	src := filepath.Join(dir, "unet", "model.onnx")
	ctx := context.Background()
	linked, err := tiling.Variant(ctx, src, tiling.XY, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	crossDevice := func(string, string) error {
		return &os.LinkError{Op: "link", Err: errors.New("invalid cross-device link")}
	}
	g, err := tiling.VariantWith(ctx, src, tiling.XY, t.TempDir(), crossDevice, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "unet"); g.ExternalDataDir != want {
		t.Fatalf("ExternalDataDir = %q, want %q", g.ExternalDataDir, want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(g.Path), "weights.pb")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("weights.pb in the unlinked variant's folder: %v", err)
	}
	// The legacy flavour takes an int64 timestep [batch].
	feeds := unetFeeds(8, 8)
	feeds[1] = feed{[]int64{1}, []int64{500}}
	want := runFile(t, rt, models.SessionSpec{Path: linked.Path}, feeds...)[0]
	got := runFile(t, rt, models.SessionSpec{Path: g.Path, ExternalDataDir: g.ExternalDataDir}, feeds...)[0]
	for i := range want.data {
		if got.data[i] != want.data[i] {
			t.Fatalf("out[%d] = %v unlinked, %v linked", i, got.data[i], want.data[i])
		}
	}
}

// TestVariantSharesInlineWeights builds variants of a VAE decoder whose
// weights are inline: with sharing, the variant's graph refers to the
// weights where the source file holds them, through a hard link to that
// file (or, when linking fails, in the source folder), and computes
// exactly what the variant with copied weights computes.
func TestVariantSharesInlineWeights(t *testing.T) {
	rt := newRuntime(t)
	dir := writeFlavour(t, testmodels.Optimum)
	before := snapshot(t, dir)
	src := filepath.Join(dir, "vae_decoder", "model.onnx")
	ctx := context.Background()
	crossDevice := func(string, string) error {
		return &os.LinkError{Op: "link", Err: errors.New("invalid cross-device link")}
	}
	copied, err := tiling.VariantWith(ctx, src, tiling.XY, t.TempDir(), os.Link, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	linked, err := tiling.VariantWith(ctx, src, tiling.XY, t.TempDir(), os.Link, 0)
	if err != nil {
		t.Fatal(err)
	}
	unlinked, err := tiling.VariantWith(ctx, src, tiling.XY, t.TempDir(), crossDevice, 0)
	if err != nil {
		t.Fatal(err)
	}
	if linked.ExternalDataDir != "" || unlinked.ExternalDataDir != filepath.Dir(src) {
		t.Fatalf("ExternalDataDir linked %q, unlinked %q", linked.ExternalDataDir, unlinked.ExternalDataDir)
	}
	a, _ := os.Stat(src)
	b, _ := os.Stat(filepath.Join(filepath.Dir(linked.Path), "source.onnx_data"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Fatal("the variant does not hard-link the source graph it takes its weights from")
	}
	sizes := map[string]int64{}
	for name, g := range map[string]*tiling.Graph{"copied": copied, "linked": linked, "unlinked": unlinked} {
		st, err := os.Stat(g.Path)
		if err != nil {
			t.Fatal(err)
		}
		sizes[name] = st.Size()
	}
	if sizes["linked"] > sizes["copied"]/2 || sizes["unlinked"] > sizes["copied"]/2 {
		t.Errorf("graph sizes %v: the shared variants still hold the weights", sizes)
	}
	z := feed{[]int64{1, 4, 4, 5}, pseudo(80, 8)}
	want := runFile(t, rt, models.SessionSpec{Path: copied.Path}, z)[0]
	for name, spec := range map[string]models.SessionSpec{
		"linked":   {Path: linked.Path},
		"unlinked": {Path: unlinked.Path, ExternalDataDir: unlinked.ExternalDataDir},
	} {
		got := runFile(t, rt, spec, z)[0]
		if !sameShape(got.shape, want.shape) || maxDiff(got.data, want.data) != 0 {
			t.Errorf("%s variant computes something else than the one with copied weights (shape %v, diff %g)", name, got.shape, maxDiff(got.data, want.data))
		}
	}
	checkUnchanged(t, before, snapshot(t, dir))
}

// TestVariantConcurrent races builds of one variant: all callers get the
// same complete variant and no build folder is left behind.
func TestVariantConcurrent(t *testing.T) {
	dir := writeFlavour(t, testmodels.Optimum)
	cache := t.TempDir()
	src := filepath.Join(dir, "unet", "model.onnx")
	const n = 8
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			g, err := tiling.Variant(context.Background(), src, tiling.XY, cache)
			errs[i] = err
			if g != nil {
				paths[i] = g.Path
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("caller %d got %s, caller 0 %s", i, paths[i], paths[0])
		}
	}
	ents, err := os.ReadDir(filepath.Join(cache, "tiling"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("cache holds %v, want one variant folder", names)
	}
	m, err := onnx.Load(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if n, err := tiling.Rewrite(m, tiling.XY); n != 0 || err != nil {
		t.Errorf("the published variant is not fully rewritten: %d more, %v", n, err)
	}
}

// TestVariantFollowsSource replaces the original's weights file, then its
// graph, then deletes the model: the variant is relinked, rebuilt under a
// new key, and pruned.
func TestVariantFollowsSource(t *testing.T) {
	dir := writeFlavour(t, testmodels.Optimum)
	cache := t.TempDir()
	ctx := context.Background()
	src := filepath.Join(dir, "unet", "model.onnx")
	data := filepath.Join(dir, "unet", "model.onnx_data")
	g1, err := tiling.Variant(ctx, src, tiling.XY, cache)
	if err != nil {
		t.Fatal(err)
	}

	// New weights, same graph: replaced by rename, as downloads do.
	content, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := onnx.WriteFileAtomic(data, content); err != nil {
		t.Fatal(err)
	}
	g2, err := tiling.Variant(ctx, src, tiling.XY, cache)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(data)
	b, _ := os.Stat(filepath.Join(filepath.Dir(g2.Path), "model.onnx_data"))
	if g2.Path != g1.Path || a == nil || b == nil || !os.SameFile(a, b) {
		t.Fatalf("after replacing the weights the variant at %s does not link them", g2.Path)
	}

	// A new graph: a new variant; the old one is pruned.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(src, later, later); err != nil {
		t.Fatal(err)
	}
	g3, err := tiling.Variant(ctx, src, tiling.XY, cache)
	if err != nil {
		t.Fatal(err)
	}
	if g3.Path == g2.Path {
		t.Fatal("an edited graph reused the old variant")
	}
	if n, err := tiling.Prune(cache); n != 1 || err != nil {
		t.Errorf("Prune removed %d (%v), want the old variant", n, err)
	}
	if _, err := os.Stat(g3.Path); err != nil {
		t.Errorf("Prune removed the current variant: %v", err)
	}

	// The model is deleted: its variant goes too.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if n, err := tiling.Prune(cache); n != 1 || err != nil {
		t.Errorf("Prune removed %d (%v) after the model was deleted, want 1", n, err)
	}
}

func TestVariantErrors(t *testing.T) {
	ctx := context.Background()
	dir := writeFlavour(t, testmodels.Optimum)
	src := filepath.Join(dir, "unet", "model.onnx")
	tests := []struct {
		name  string
		src   string
		axes  tiling.Axes
		cache string
		setup func()
		want  string
	}{
		{"no axes", src, tiling.Axes{}, t.TempDir(), nil, "no axis to wrap"},
		{"no cache", src, tiling.XY, "", nil, "set KILN_CACHE_HOME"},
		{"missing graph", filepath.Join(dir, "nope", "model.onnx"), tiling.XY, t.TempDir(), nil, "no such file"},
		{"a folder", dir, tiling.XY, t.TempDir(), nil, "give a component's model.onnx"},
		{"missing weights", src, tiling.XY, t.TempDir(), func() {
			os.Remove(filepath.Join(dir, "unet", "model.onnx_data"))
		}, "download or export the model again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			_, err := tiling.Variant(ctx, tt.src, tt.axes, tt.cache)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tiling.Variant(cancelled, src, tiling.XY, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// maxDiff is the largest absolute difference between a and b.
func maxDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}
