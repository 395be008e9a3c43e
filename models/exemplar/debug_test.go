package exemplar

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/models/sampler"
)

// TestDebugTrajectory writes the x0 prediction of every step of one
// generation (KILN_EXEMPLAR_DEBUG names the prompt) as a sheet: where
// structure appears and where it is lost, for tuning the patch schedule
// (KILN_EXEMPLAR_SCHEDULE="sigma:size:down,..."), bank and dims.
func TestDebugTrajectory(t *testing.T) {
	dir := previewDir(t)
	if os.Getenv("KILN_EXEMPLAR_DEBUG") == "" {
		t.Skip("debug")
	}
	rt := testRuntime(t)
	ctx := context.Background()
	prompt := os.Getenv("KILN_EXEMPLAR_DEBUG")
	m, err := New(ctx, rt, Options{Prompt: prompt, Tile: Tiling{X: true, Y: true}, CacheDir: t.TempDir(), Schedule: envSchedule(t), BankSize: envInt("KILN_EXEMPLAR_BANK"), Dims: envInt("KILN_EXEMPLAR_DIMS")})
	if err != nil {
		t.Fatal(err)
	}
	const s = 128
	name := os.Getenv("KILN_EXEMPLAR_SCHED")
	if name == "" {
		name = "euler"
	}
	steps := DefaultSteps
	if v := envInt("KILN_EXEMPLAR_STEPS"); v > 0 {
		steps = v
	}
	eta, _ := strconv.ParseFloat(os.Getenv("KILN_EXEMPLAR_ETA"), 64)
	sch, err := sampler.NewScheduler(name, m.Info().Scheduler, sampler.SchedulerOptions{Steps: steps, Eta: eta})
	if err != nil {
		t.Fatal(err)
	}
	gen := sampler.NewGenerator(1)
	lat := make([]float32, 3*s*s)
	gen.FillNormal(lat)
	k := float32(sch.InitNoiseSigma())
	for i := range lat {
		lat[i] *= k
	}
	in := make([]float32, len(lat))
	pred := make([]float32, len(lat))
	var frames []image.Image
	for i, ts := range sch.Timesteps() {
		sc := float32(sch.InputScale(i))
		for j, v := range lat {
			in[j] = v * sc
		}
		out, err := m.UNet(ctx, sampler.UNetInput{Latents: sampler.Tensor{Shape: []int64{1, 3, s, s}, Data: in}, Timestep: ts})
		if err != nil {
			t.Fatal(err)
		}
		copy(pred, out.Data)
		ab := m.sigmas.alphaBar(ts)
		var sig float64
		if sg := sch.Sigmas(); sg != nil {
			sig = sg[i]
		}
		t.Logf("step %d t=%.3f sigma=%.4f ab=%.5f sigma(ab)=%.4f level %+v", i, ts, sig, ab, math.Sqrt((1-ab)/ab), levelFor(m.schedule, ab, s, s))
		imgs, _ := sampler.TensorToImages(sampler.Tensor{Shape: []int64{1, 3, s, s}, Data: pred})
		frames = append(frames, imgs[0])
		if err := sch.Step(i, pred, lat, gen); err != nil {
			t.Fatal(err)
		}
	}
	writePNG(t, filepath.Join(dir, "debug-"+prompt+os.Getenv("KILN_EXEMPLAR_TAG")+".png"), sheet(frames, 6))
}

func envInt(k string) int {
	v, _ := strconv.Atoi(os.Getenv(k))
	return v
}

// envSchedule parses KILN_EXEMPLAR_SCHEDULE="sigma:size:down,...".
func envSchedule(t *testing.T) []PatchLevel {
	v := os.Getenv("KILN_EXEMPLAR_SCHEDULE")
	if v == "" {
		return nil
	}
	var out []PatchLevel
	for _, e := range strings.Split(v, ",") {
		var l PatchLevel
		if _, err := fmt.Sscanf(e, "%g:%d:%d", &l.MinSigma, &l.Size, &l.Down); err != nil {
			t.Fatalf("schedule %q: %v", e, err)
		}
		out = append(out, l)
	}
	return out
}

// TestDebugSeamSpread prints, for the PNGs in KILN_EXEMPLAR_COMPOSE, the
// spread of the seam ratio over every possible wrap position: each column
// (row) pair's mean difference over the image's mean.
func TestDebugSeamSpread(t *testing.T) {
	dir := previewDir(t)
	names := os.Getenv("KILN_EXEMPLAR_COMPOSE")
	if names == "" {
		t.Skip("set KILN_EXEMPLAR_COMPOSE")
	}
	for _, n := range strings.Split(names, ",") {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		nr := toNRGBA(img)
		w := nr.Rect.Dx()
		ratios := make([]float64, w)
		for c := 0; c < w; c++ {
			rolled := Roll(nr, w-1-c, 0) // column pair (c, c+1) becomes the wrap pair
			ratios[c], _ = imageops.Seams(imageops.FromImage(rolled))
		}
		sort.Float64s(ratios)
		over := 0
		for _, r := range ratios {
			if r > 1.15 {
				over++
			}
		}
		t.Logf("%s: x seam ratio over all wrap positions: min %.2f median %.2f p90 %.2f max %.2f; %d of %d above 1.15", n, ratios[0], ratios[w/2], ratios[w*9/10], ratios[w-1], over, w)
	}
}
