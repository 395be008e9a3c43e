package models

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/generators/sampler"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// TestRowTimesteps checks the per-row timesteps a Batcher stacks
// generations at different steps with: graphs with a [batch] timestep
// take them, and a call of two 2-row halves at two timesteps gives, row
// for row, the same bits as the two calls alone; a graph with a scalar
// timestep refuses them.
func TestRowTimesteps(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		flavour testmodels.Flavour
		rows    bool
	}{
		{testmodels.DiffusersLegacy, true},
		{testmodels.FP16, true},
		{testmodels.Optimum, false},
	} {
		t.Run(string(tt.flavour), func(t *testing.T) {
			d := sharedDiffuser(t, tt.flavour)
			info := d.Info()
			if info.RowTimesteps != tt.rows {
				t.Fatalf("RowTimesteps %v, want %v", info.RowTimesteps, tt.rows)
			}
			cond, _, err := d.EncodeText(ctx, []string{"", "stone"})
			if err != nil {
				t.Fatal(err)
			}
			a := unetInput(info, cond, 901, 4, 4)
			b := unetInput(info, cond, 301, 4, 4)
			b.Latents = tensor(11, b.Latents.Shape...)
			both := sampler.UNetInput{
				Latents:   sampler.Tensor{Shape: []int64{4, a.Latents.Shape[1], 4, 4}, Data: slices.Concat(a.Latents.Data, b.Latents.Data)},
				Timesteps: []float64{901, 901, 301, 301},
				Cond:      sampler.Cond{Hidden: sampler.Tensor{Shape: []int64{4, cond.Hidden.Shape[1], cond.Hidden.Shape[2]}, Data: slices.Concat(cond.Hidden.Data, cond.Hidden.Data)}},
			}
			out, err := d.UNet(ctx, both)
			if !tt.rows {
				if err == nil || !strings.Contains(err.Error(), "timesteps for a batch of 4") {
					t.Errorf("error %v for per-row timesteps on a scalar-timestep graph", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var alone []float32
			for _, in := range []sampler.UNetInput{a, b} {
				o, err := d.UNet(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				alone = append(alone, o.Data...)
			}
			if !slices.Equal(out.Data, alone) {
				t.Errorf("the stacked call differs from the calls alone by up to %g", maxAbsDiff(out.Data, alone))
			}
		})
	}
}
