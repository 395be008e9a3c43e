package tiling_test

import (
	"context"
	"math"
	"testing"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/models/testmodels"
	"github.com/kiln-dev/kiln/models/tiling"
)

// diffusers opens a generated model folder twice on rt: as exported, and
// with its UNet and VAE decoder replaced by their circular variants along
// axes, as the tileable generator runs it.
func diffusers(t *testing.T, rt *models.Runtime, fl testmodels.Flavour, axes tiling.Axes) (orig, circ *models.Diffuser) {
	t.Helper()
	f, err := models.OpenFolder(writeFlavour(t, fl))
	if err != nil {
		t.Fatal(err)
	}
	f.CacheDir = t.TempDir()
	orig, err = models.NewDiffuser(rt, f, models.DiffuserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	graphs := map[string]string{}
	for _, c := range []string{models.UNet, models.VAEDecoder} {
		g, err := tiling.Variant(context.Background(), f.Path(c), axes, cache)
		if err != nil {
			t.Fatal(err)
		}
		if g.ExternalDataDir != "" {
			t.Fatalf("%s: weights not linked, though cache and model share a file system", c)
		}
		if g.Rewritten == 0 {
			t.Fatalf("%s: nothing rewritten", c)
		}
		graphs[c] = g.Path
	}
	circ, err = models.NewDiffuser(rt, f, models.DiffuserOptions{Graphs: graphs, Variant: axes.Label()})
	if err != nil {
		t.Fatal(err)
	}
	return orig, circ
}

// unetIn is a batch-1 UNet call on h×w latents for model d.
func unetIn(t *testing.T, d *models.Diffuser, latents sampler.Tensor) sampler.UNetInput {
	t.Helper()
	cond, _, err := d.EncodeText(context.Background(), []string{"mossy cobblestone"})
	if err != nil {
		t.Fatal(err)
	}
	info := d.Info()
	in := sampler.UNetInput{Latents: latents, Timestep: 601, Cond: cond}
	if info.SDXL {
		s := float32(latents.Shape[2] * int64(info.VAEFactor))
		in.TimeIDs = sampler.Tensor{Shape: []int64{1, 6}, Data: []float32{s, s, 0, 0, s, s}}
	}
	if info.TimestepCondDim > 0 {
		in.TimestepCond = sampler.Tensor{Shape: []int64{1, int64(info.TimestepCondDim)}, Data: pseudo(info.TimestepCondDim, 5)}
	}
	return in
}

func latents(c, h, w int64, seed uint64) sampler.Tensor {
	return sampler.Tensor{Shape: []int64{1, c, h, w}, Data: pseudo(int(c*h*w), seed)}
}

// roll shifts an NCHW tensor circularly by dy rows and dx columns.
func roll(x sampler.Tensor, dy, dx int) sampler.Tensor {
	n, c, h, w := int(x.Shape[0]), int(x.Shape[1]), int(x.Shape[2]), int(x.Shape[3])
	out := sampler.Tensor{Shape: append([]int64(nil), x.Shape...), Data: make([]float32, len(x.Data))}
	for p := 0; p < n*c; p++ {
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				out.Data[(p*h+(i+dy)%h)*w+(j+dx)%w] = x.Data[(p*h+i)*w+j]
			}
		}
	}
	return out
}

func tensorDiff(a, b sampler.Tensor) float64 {
	d := 0.0
	for i := range a.Data {
		d = math.Max(d, math.Abs(float64(a.Data[i]-b.Data[i])))
	}
	return d
}

func clone(x sampler.Tensor) sampler.Tensor {
	return sampler.Tensor{Shape: append([]int64(nil), x.Shape...), Data: append([]float32(nil), x.Data...)}
}

// TestFlavoursShiftEquivariant rewrites the UNet and VAE decoder of every
// generated export flavour, runs them through a Diffuser, and checks what
// circular padding means: the outputs keep their shapes, and shifting the
// input circularly shifts the output the same way (by 2 latent pixels for
// the UNet, whose stride-2 convolution halves the grid; by 1 latent pixel,
// i.e. 8 image pixels, for the decoder). With zero padding that fails at
// the borders, which the original graphs show.
func TestFlavoursShiftEquivariant(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	for _, fl := range testmodels.Flavours() {
		t.Run(string(fl), func(t *testing.T) {
			orig, circ := diffusers(t, rt, fl, tiling.XY)
			tol := 1e-4
			if fl == testmodels.FP16 {
				tol = 4e-3
			}
			x := latents(4, 8, 12, 7)
			unet := func(d *models.Diffuser, x sampler.Tensor) sampler.Tensor {
				y, err := d.UNet(ctx, unetIn(t, d, x))
				if err != nil {
					t.Fatal(err)
				}
				return clone(y)
			}
			y := unet(circ, x)
			if yo := unet(orig, x); !sameShape(yo.Shape, y.Shape) {
				t.Fatalf("unet output %v, original %v", y.Shape, yo.Shape)
			}
			if d := tensorDiff(unet(circ, roll(x, 2, 4)), roll(y, 2, 4)); d > tol {
				t.Errorf("circular unet: shifted input gives an output %g away from the shifted output", d)
			}
			if d := tensorDiff(unet(orig, roll(x, 2, 4)), roll(unet(orig, x), 2, 4)); d < 100*tol {
				t.Errorf("original unet is shift-equivariant too (%g): the test proves nothing", d)
			}

			z := latents(4, 4, 6, 9)
			decode := func(d *models.Diffuser, z sampler.Tensor) sampler.Tensor {
				img, err := d.DecodeLatents(ctx, z)
				if err != nil {
					t.Fatal(err)
				}
				return clone(img)
			}
			img := decode(circ, z)
			if io := decode(orig, z); !sameShape(io.Shape, img.Shape) || !sameShape(img.Shape, []int64{1, 3, 32, 48}) {
				t.Fatalf("decoded %v, original %v", img.Shape, io.Shape)
			}
			if d := tensorDiff(decode(circ, roll(z, 1, 2)), roll(img, 8, 16)); d > tol {
				t.Errorf("circular decoder: shifted latents give an image %g away from the shifted image", d)
			}
		})
	}
}

// TestSingleAxis checks x-only and y-only variants: equivariant along
// their axis only.
func TestSingleAxis(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	for _, tc := range []struct {
		axes   tiling.Axes
		dy, dx int
	}{{tiling.X, 0, 4}, {tiling.Y, 2, 0}} {
		t.Run(tc.axes.String(), func(t *testing.T) {
			_, circ := diffusers(t, rt, testmodels.Optimum, tc.axes)
			x := latents(4, 8, 8, 3)
			run := func(x sampler.Tensor) sampler.Tensor {
				y, err := circ.UNet(ctx, unetIn(t, circ, x))
				if err != nil {
					t.Fatal(err)
				}
				return clone(y)
			}
			y := run(x)
			if d := tensorDiff(run(roll(x, tc.dy, tc.dx)), roll(y, tc.dy, tc.dx)); d > 1e-4 {
				t.Errorf("shift along the wrapped axis: %g", d)
			}
			if d := tensorDiff(run(roll(x, tc.dx/2, tc.dy*2)), roll(y, tc.dx/2, tc.dy*2)); d < 1e-2 {
				t.Errorf("shift along the other axis is equivariant too (%g): it should keep zero padding", d)
			}
		})
	}
}

// TestDecodedSeams decodes a latent that is periodic over its size (a
// sum of sinusoids with whole periods) with the circular VAE decoder of
// a test model: the image's seam score is within imageops.SeamlessScore
// on both axes. The original
// decoder's zero padding leaves seams.
func TestDecodedSeams(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	orig, circ := diffusers(t, rt, testmodels.Optimum, tiling.XY)
	const c, h, w = 4, 16, 16
	z := sampler.Tensor{Shape: []int64{1, c, h, w}, Data: make([]float32, c*h*w)}
	for ch := 0; ch < c; ch++ {
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				u, v := 2*math.Pi*float64(j)/w, 2*math.Pi*float64(i)/h
				z.Data[(ch*h+i)*w+j] = float32(1.5*math.Sin(u+float64(ch)) + math.Cos(2*v-float64(ch)) + 0.5*math.Sin(u+3*v))
			}
		}
	}
	seams := func(d *models.Diffuser) (float64, float64) {
		img, err := d.DecodeLatents(ctx, z)
		if err != nil {
			t.Fatal(err)
		}
		H, W := int(img.Shape[2]), int(img.Shape[3])
		planes := make([]float32, len(img.Data))
		for i, v := range img.Data {
			planes[i] = (v + 1) / 2
		}
		f, err := imageops.FromPlanar(W, H, 3, planes)
		if err != nil {
			t.Fatal(err)
		}
		return imageops.Seams(f)
	}
	sx, sy := seams(circ)
	ox, oy := seams(orig)
	t.Logf("seam metric: circular x %.3f y %.3f; original x %.3f y %.3f", sx, sy, ox, oy)
	if sx > imageops.SeamlessScore || sy > imageops.SeamlessScore {
		t.Errorf("circular decoder seams x %.3f, y %.3f; want ≤ %.2f", sx, sy, imageops.SeamlessScore)
	}
	if ox <= sx || oy <= sy {
		t.Errorf("original decoder seams (%.3f, %.3f) are no worse than the circular ones", ox, oy)
	}
}
