package sampler_test

import (
	"context"
	"image"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// halfMask is a w×h mask that keeps the left half, redraws the right
// half, and ramps between them over ramp columns.
func halfMask(w, h, ramp int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 0
			switch {
			case x >= w/2+ramp:
				v = 255
			case x >= w/2:
				v = 255 * (x - w/2 + 1) / (ramp + 1)
			}
			m.Pix[y*m.Stride+x] = uint8(v)
		}
	}
	return m
}

// TestInpaint checks latent-blending inpainting on a generated model:
// where the mask is 0 the output is the init image byte for byte, where it
// is not the image changes, the same seed gives the same image, and
// splitting the batch into UNet calls of one image changes nothing.
func TestInpaint(t *testing.T) {
	ctx := context.Background()
	d := diffuser(t, testmodels.Optimum)
	base, _, err := sampler.Generate(ctx, d, sampler.Request{Prompt: "a stone wall", Width: 64, Height: 48, Steps: 3, Guidance: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	init := base[0]
	tests := []struct {
		name      string
		scheduler string
		strength  float64
		mask      *image.Gray
		count     int
	}{
		{"euler", sampler.Euler, 0.8, halfMask(64, 48, 6), 1},
		{"euler_a batch", sampler.EulerAncestral, 0.7, halfMask(64, 48, 0), 2},
		{"ddim full strength", sampler.DDIM, 1, halfMask(64, 48, 3), 1},
		{"dpmpp_2m", sampler.DPMPP2M, 0.6, halfMask(64, 48, 8), 2},
		{"empty mask", sampler.Euler, 0.8, image.NewGray(image.Rect(0, 0, 64, 48)), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sampler.Request{Prompt: "moss", Guidance: 5, Steps: 5, Seed: 9, Scheduler: tc.scheduler,
				InitImage: init, Strength: tc.strength, Mask: tc.mask, Count: tc.count}
			out, _, err := sampler.Generate(ctx, d, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != max(tc.count, 1) {
				t.Fatalf("%d images, want %d", len(out), tc.count)
			}
			for n, img := range out {
				changed := 0
				for y := 0; y < 48; y++ {
					for x := 0; x < 64; x++ {
						i := img.PixOffset(x, y)
						same := string(img.Pix[i:i+4]) == string(init.Pix[i:i+4])
						if tc.mask.GrayAt(x, y).Y == 0 && !same {
							t.Fatalf("image %d: pixel (%d, %d) outside the mask is %v, the init image's %v", n, x, y, img.Pix[i:i+4], init.Pix[i:i+4])
						}
						if tc.mask.GrayAt(x, y).Y == 255 && !same {
							changed++
						}
					}
				}
				if full := tc.mask.GrayAt(63, 0).Y == 255; full && changed < 64*48/8 {
					t.Errorf("image %d: only %d pixels inside the mask changed", n, changed)
				}
			}
			again, _, err := sampler.Generate(ctx, d, req)
			if err != nil {
				t.Fatal(err)
			}
			split := req
			split.BatchSize = 1
			one, _, err := sampler.Generate(ctx, d, split)
			if err != nil {
				t.Fatal(err)
			}
			for n := range out {
				if !samePixels(out[n], again[n]) {
					t.Errorf("image %d: the same seed gave different images", n)
				}
				if !samePixels(out[n], one[n]) {
					t.Errorf("image %d: batch size 1 changed the image", n)
				}
			}
		})
	}
}

// TestInpaintErrors checks that masks that do not fit are refused.
func TestInpaintErrors(t *testing.T) {
	ctx := context.Background()
	d := diffuser(t, testmodels.Optimum)
	init := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	tests := []struct {
		name string
		req  sampler.Request
		want string
	}{
		{"no init image", sampler.Request{Prompt: "x", Width: 32, Height: 32, Mask: image.NewGray(image.Rect(0, 0, 32, 32))}, "needs an init image"},
		{"mask size", sampler.Request{Prompt: "x", InitImage: init, Mask: image.NewGray(image.Rect(0, 0, 16, 32))}, "the mask is 16x32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := sampler.Generate(ctx, d, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestInpaintingUNet runs a 9-channel inpainting UNet (testmodels'
// inpaint flavour): the model says what it is, it refuses to run without
// a mask, and with one the kept pixels come back exactly and the same
// seed gives the same image, at part and full strength.
func TestInpaintingUNet(t *testing.T) {
	ctx := context.Background()
	d := diffuser(t, testmodels.Inpaint)
	if info := d.Info(); !info.InpaintingUNet || info.LatentChannels != 4 {
		t.Fatalf("info: inpainting %v, %d latent channels; want true, 4", info.InpaintingUNet, info.LatentChannels)
	}
	if _, _, err := sampler.Generate(ctx, d, sampler.Request{Prompt: "x", Width: 32, Height: 32, Steps: 2}); err == nil || !strings.Contains(err.Error(), "inpainting UNet") {
		t.Fatalf("txt2img on an inpainting UNet: error %v", err)
	}
	init := refInit(64, 48)
	mask := halfMask(64, 48, 4)
	for _, tc := range []struct {
		scheduler string
		strength  float64
		guidance  float64
	}{{sampler.Euler, 1, 5}, {sampler.EulerAncestral, 0.7, 0}, {sampler.DDIM, 0.8, 7}} {
		t.Run(tc.scheduler, func(t *testing.T) {
			req := sampler.Request{Prompt: "moss", Steps: 4, Seed: 5, Scheduler: tc.scheduler, Guidance: tc.guidance,
				InitImage: init, Strength: tc.strength, Mask: mask, Count: 2}
			out, rep, err := sampler.Generate(ctx, d, req)
			if err != nil {
				t.Fatal(err)
			}
			if rep.UNetCalls != len(rep.Timesteps) {
				t.Errorf("%d UNet calls for %d steps", rep.UNetCalls, len(rep.Timesteps))
			}
			again, _, err := sampler.Generate(ctx, d, req)
			if err != nil {
				t.Fatal(err)
			}
			for n, img := range out {
				changed := 0
				for p := range img.Pix {
					mv := mask.Pix[p/4]
					if mv == 0 && img.Pix[p] != init.Pix[p] {
						t.Fatalf("image %d: byte %d outside the mask changed", n, p)
					}
					if mv == 255 && img.Pix[p] != init.Pix[p] {
						changed++
					}
				}
				if changed < len(img.Pix)/8 {
					t.Errorf("image %d: only %d bytes inside the mask changed", n, changed)
				}
				if !samePixels(img, again[n]) {
					t.Errorf("image %d: the same seed gave another image", n)
				}
			}
		})
	}
}
