package models

import (
	"context"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/testmodels"
)

// TestInpaintingUNetChannels checks how a UNet's channels are read: equal
// in and out is a regular UNet, 2·C+1 in and C out an inpainting one, and
// anything else is refused with both counts.
func TestInpaintingUNetChannels(t *testing.T) {
	tests := []struct {
		name    string
		in      int
		out     int64 // the graph's output channels, 0 when symbolic
		config  map[string]any
		want    int
		inpaint bool
		err     string
	}{
		{name: "regular", in: 4, out: 4, want: 4},
		{name: "regular symbolic", in: 4, want: 4},
		{name: "inpainting", in: 9, out: 4, want: 4, inpaint: true},
		{name: "inpainting symbolic, no config", in: 9, want: 4, inpaint: true},
		{name: "inpainting from config", in: 9, config: map[string]any{"out_channels": 4.0}, want: 4, inpaint: true},
		{name: "sdxl-size latents", in: 33, out: 16, want: 16, inpaint: true},
		{name: "unknown", in: 8, out: 4, err: "takes 8 channels and returns 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &Diffuser{f: &Folder{UNetConfig: tc.config}}
			d.info.LatentChannels = tc.in
			u := &unetGraph{out: TensorInfo{Name: "out_sample", Shape: []int64{-1, tc.out, -1, -1}}}
			if tc.out == 0 {
				u.out.Shape[1] = -1
			}
			err := d.inpaintingUNet("unet", u)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.info.LatentChannels != tc.want || d.info.InpaintingUNet != tc.inpaint {
				t.Errorf("latent channels %d, inpainting %v; want %d, %v", d.info.LatentChannels, d.info.InpaintingUNet, tc.want, tc.inpaint)
			}
		})
	}
}

// TestInpaintFlavour opens testmodels' inpainting export and runs its UNet
// on a 9-channel input, which returns 4 channels.
func TestInpaintFlavour(t *testing.T) {
	ctx := context.Background()
	d := sharedDiffuser(t, testmodels.Inpaint)
	info := d.Info()
	if !info.InpaintingUNet || info.LatentChannels != 4 {
		t.Fatalf("info: inpainting %v, %d latent channels; want true, 4", info.InpaintingUNet, info.LatentChannels)
	}
	cond, _, err := d.EncodeText(ctx, []string{"", "moss"})
	if err != nil {
		t.Fatal(err)
	}
	in := unetInput(info, cond, 500, 4, 6)
	in.Latents = tensor(7, 2, 9, 4, 6)
	out, err := d.UNet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !sameShape(out.Shape, 2, 4, 4, 6) || !allFinite(out) {
		t.Errorf("output shape %v (finite %v), want [2 4 4 6]", out.Shape, allFinite(out))
	}
}
