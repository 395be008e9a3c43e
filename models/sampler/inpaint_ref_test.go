package sampler_test

import (
	"context"
	"encoding/json"
	"flag"
	"image"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// inpaintInputs, when set, makes TestInpaintReference write what the
// Python reference needs (the encoder's posterior, the UNet's outputs) to
// that file instead of checking testdata/inpaint.json; see
// testdata/gen_inpaint.py.
var inpaintInputs = flag.String("inpaint-inputs", "", "write the inputs of testdata/gen_inpaint.py to this file")

// recorder is a real model whose calls a test records (the reference
// tests of inpainting and of the schedulers share it).
type recorder struct {
	sampler.Model
	encodes   [][2][]float32 // posterior mean and log-variance, per call
	timesteps []float64      // UNet timesteps, per step
	inputs    [][]float32    // UNet latents, per step
	outputs   [][]float32    // UNet outputs, per step
	decoded   [][]float32    // decoder inputs, per image
}

func (r *recorder) EncodeImage(ctx context.Context, img sampler.Tensor) (sampler.Tensor, sampler.Tensor, error) {
	mean, logvar, err := r.Model.EncodeImage(ctx, img)
	r.encodes = append(r.encodes, [2][]float32{append([]float32(nil), mean.Data...), append([]float32(nil), logvar.Data...)})
	return mean, logvar, err
}

func (r *recorder) UNet(ctx context.Context, in sampler.UNetInput) (sampler.Tensor, error) {
	out, err := r.Model.UNet(ctx, in)
	r.timesteps = append(r.timesteps, in.Timestep)
	r.inputs = append(r.inputs, append([]float32(nil), in.Latents.Data...))
	r.outputs = append(r.outputs, append([]float32(nil), out.Data...))
	return out, err
}

func (r *recorder) DecodeLatents(ctx context.Context, z sampler.Tensor) (sampler.Tensor, error) {
	r.decoded = append(r.decoded, append([]float32(nil), z.Data...))
	return r.Model.DecodeLatents(ctx, z)
}

// inpaintCase is one reference generation; the JSON fields are shared
// with gen_inpaint.py.
type inpaintCase struct {
	Label string `json:"label"`
	// UNet9 runs testmodels' 9-channel inpainting UNet, else the optimum
	// flavour's 4-channel one.
	UNet9     bool      `json:"unet9,omitempty"`
	Scheduler string    `json:"scheduler"`
	Config    any       `json:"config"`
	Steps     int       `json:"steps"`
	Strength  float64   `json:"strength"`
	Guidance  float64   `json:"guidance"`
	Seed      uint64    `json:"seed"`
	Count     int       `json:"count"`
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	Scaling   float64   `json:"scaling_factor"`
	Mask      []float32 `json:"mask"`
	Mean      []float32 `json:"mean"`
	Logvar    []float32 `json:"logvar"`
	// MaskedMean and MaskedLogvar are the masked image's posterior (UNet9).
	MaskedMean   []float32   `json:"masked_mean,omitempty"`
	MaskedLogvar []float32   `json:"masked_logvar,omitempty"`
	Outputs      [][]float32 `json:"unet_outputs"`
	// Written by gen_inpaint.py: the UNet inputs diffusers' loop makes
	// at every step and the unscaled latents it decodes, per image.
	RefInputs  [][]float32 `json:"ref_unet_inputs,omitempty"`
	RefDecoded [][]float32 `json:"ref_decoded,omitempty"`
}

// inpaintCases are the generations of the reference: a stochastic
// scheduler on two images, and deterministic ones at part and full
// strength.
var inpaintCases = []inpaintCase{
	{Label: "euler_a two images", Scheduler: sampler.EulerAncestral, Steps: 8, Strength: 0.75, Guidance: 5, Seed: 31, Count: 2},
	{Label: "ddim full strength", Scheduler: sampler.DDIM, Steps: 6, Strength: 1, Guidance: 4, Seed: 32, Count: 1},
	{Label: "dpmpp_2m", Scheduler: sampler.DPMPP2M, Steps: 10, Strength: 0.6, Guidance: 6, Seed: 33, Count: 1},
	{Label: "euler", Scheduler: sampler.Euler, Steps: 7, Strength: 0.5, Guidance: 0, Seed: 34, Count: 1},
	{Label: "9-channel euler_a", UNet9: true, Scheduler: sampler.EulerAncestral, Steps: 6, Strength: 0.8, Guidance: 5, Seed: 35, Count: 2},
	{Label: "9-channel ddim full strength", UNet9: true, Scheduler: sampler.DDIM, Steps: 5, Strength: 1, Guidance: 3, Seed: 36, Count: 1},
}

// refInit is the init image: a smooth pattern of every colour.
func refInit(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := img.PixOffset(x, y)
			img.Pix[i] = uint8(255 * x / (w - 1))
			img.Pix[i+1] = uint8(255 * y / (h - 1))
			img.Pix[i+2] = uint8(128 + 100*math.Sin(float64(x+y)/5))
			img.Pix[i+3] = 255
		}
	}
	return img
}

// refMask redraws a rectangle whose edges fall between the pixels the
// latent mask samples, so the nearest-neighbour downsampling is tested.
func refMask(w, h int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := 5; y < h-11; y++ {
		for x := 13; x < w-3; x++ {
			m.Pix[y*m.Stride+x] = 255
		}
	}
	return m
}

// TestInpaintReference checks inpainting against testdata/inpaint.json,
// made by gen_inpaint.py, which runs diffusers'
// StableDiffusionInpaintPipeline loop in torch on the same posteriors and
// UNet outputs, for a 4-channel UNet (latent blending) and for a 9-channel
// inpainting UNet: every step's UNet input and the decoded latents must
// agree, and the composited images within 2/255.
func TestInpaintReference(t *testing.T) {
	ctx := context.Background()
	d4, d9 := diffuser(t, testmodels.Optimum), diffuser(t, testmodels.Inpaint)
	const w, h = 48, 40
	init, mask := refInit(w, h), refMask(w, h)
	var ref []inpaintCase
	if *inpaintInputs == "" {
		data, err := os.ReadFile(filepath.Join("testdata", "inpaint.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &ref); err != nil {
			t.Fatal(err)
		}
		if len(ref) != len(inpaintCases) {
			t.Fatalf("testdata/inpaint.json has %d cases, want %d: regenerate it (see gen_inpaint.py)", len(ref), len(inpaintCases))
		}
	}
	var dump []inpaintCase
	for n, c := range inpaintCases {
		t.Run(c.Label, func(t *testing.T) {
			d := d4
			if c.UNet9 {
				d = d9
			}
			rec := &recorder{Model: d}
			imgs, _, err := sampler.Generate(ctx, rec, sampler.Request{
				Prompt: "a cobbled path", NegativePrompt: "blur", Scheduler: c.Scheduler, Steps: c.Steps,
				Strength: c.Strength, Guidance: c.Guidance, Seed: c.Seed, Count: c.Count,
				InitImage: init, Mask: mask,
			})
			if err != nil {
				t.Fatal(err)
			}
			if *inpaintInputs != "" {
				c.Config = d.Info().Scheduler
				c.Width, c.Height, c.Scaling = w, h, d.Info().ScalingFactor
				for _, v := range mask.Pix {
					c.Mask = append(c.Mask, float32(v)/255)
				}
				c.Outputs = rec.outputs
				if !c.UNet9 || c.Strength != 1 {
					c.Mean, c.Logvar = rec.encodes[0][0], rec.encodes[0][1]
				}
				if c.UNet9 {
					last := rec.encodes[len(rec.encodes)-1]
					c.MaskedMean, c.MaskedLogvar = last[0], last[1]
				}
				dump = append(dump, c)
				return
			}
			r := ref[n]
			if r.Label != c.Label || len(r.RefInputs) != len(rec.inputs) || len(r.RefDecoded) != len(rec.decoded) {
				t.Fatalf("reference %q has %d steps and %d images, the run %q %d and %d: regenerate testdata/inpaint.json",
					r.Label, len(r.RefInputs), len(r.RefDecoded), c.Label, len(rec.inputs), len(rec.decoded))
			}
			// Step by step: the UNet input must be diffusers', and the
			// UNet's output on it the one the reference was made with
			// (else the model generator changed, not the sampler).
			lat := 0.0
			for k := range rec.inputs {
				e := maxDiff(rec.inputs[k], r.RefInputs[k])
				lat = max(lat, e)
				if e > 1e-4 {
					t.Fatalf("step %d: the UNet input differs from diffusers' by %g", k, e)
				}
				if e := maxDiff(rec.outputs[k], r.Outputs[k]); e > 1e-4 {
					t.Fatalf("step %d: the UNet's output differs from the recorded one by %g: the test model changed; regenerate testdata/inpaint.json", k, e)
				}
			}
			worst := 0
			for i, z := range rec.decoded {
				e := maxDiff(z, r.RefDecoded[i])
				lat = max(lat, e)
				if e > 1e-4 {
					t.Errorf("image %d: decoded latents differ from diffusers' by %g", i, e)
				}
				// Decode diffusers' latents and composite them as kiln
				// does; diffusers' pipeline leaves that step to the
				// caller (it composites only with padding_mask_crop).
				out, err := d.DecodeLatents(ctx, sampler.Tensor{Shape: []int64{1, 4, h / 8, w / 8}, Data: r.RefDecoded[i]})
				if err != nil {
					t.Fatal(err)
				}
				want, err := sampler.TensorToImages(out)
				if err != nil {
					t.Fatal(err)
				}
				got := imgs[i]
				for p := range got.Pix {
					mv := int(mask.Pix[p/4])
					wv := want[0].Pix[p]
					if mv == 0 {
						wv = init.Pix[p]
					}
					worst = max(worst, abs(int(got.Pix[p])-int(wv)))
				}
			}
			t.Logf("largest difference from the diffusers reference: latents %.2g, pixels %d/255", lat, worst)
			if worst > 2 {
				t.Errorf("pixels differ from the diffusers reference by %d/255, want at most 2", worst)
			}
		})
	}
	if *inpaintInputs != "" {
		data, err := json.Marshal(dump)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*inpaintInputs, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	e := 0.0
	for i := range a {
		e = max(e, math.Abs(float64(a[i])-float64(b[i])))
	}
	return e
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
