package generators

import (
	"context"
	"fmt"
	"image"
	"math"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/pipeline"
)

// deriveVersion changes whenever the derive stage would write different
// bytes for the same albedo and parameters.
const deriveVersion = "1"

// deriveParams are the Params of a texture's derive stage: everything
// that shapes the maps. Changing them re-runs only that stage.
type deriveParams struct {
	Maps           []string   `json:"maps"`
	NormalStrength float64    `json:"normal_strength"`
	DirectX        bool       `json:"directx"`
	Roughness      [2]float64 `json:"roughness"`
	Metallic       float64    `json:"metallic"`
	MetallicMap    bool       `json:"metallic_map"`
	Tile           string     `json:"tile,omitempty"`
}

// texture plans a kind: texture asset: a generate stage for the albedo
// (tileable when tile: is set) and a derive stage for the other maps.
func (pl *planner) texture(a *manifests.Asset) {
	gen, mf, ok := pl.base(a, string(manifests.KindTexture))
	if !ok {
		return
	}
	t := a.Texture
	if t == nil {
		t = &manifests.TextureOptions{Maps: []string{manifests.MapAlbedo}, NormalStrength: 1, Roughness: [2]float64{0.3, 0.9}}
	}
	if t.Tile != "" && t.Tile != manifests.TileNone {
		gen.Tile = string(t.Tile)
	}
	init, ok := pl.initFrom(a, &gen)
	if !ok {
		return
	}
	g := pl.genStage(a, GenerateStage(a.ID), "texture.generate", gen, mf, init, a.At("from").String())
	if t.HasMap(manifests.MapAlbedo) {
		g.Publish = map[string]string{ImageOutput: MainPath(a.ID)}
	}
	pl.stages = append(pl.stages, g)

	dp := deriveParams{
		NormalStrength: t.NormalStrength,
		DirectX:        t.NormalY == "directx",
		Roughness:      t.Roughness,
		Metallic:       t.Metallic,
		MetallicMap:    t.MetallicMap,
		Tile:           gen.Tile,
	}
	for _, m := range t.Maps {
		if m != manifests.MapAlbedo {
			dp.Maps = append(dp.Maps, m)
		}
	}
	if len(dp.Maps) == 0 {
		return
	}
	d := pl.stage(a, DeriveStage(a.ID), "pbr.derive", deriveVersion, false)
	d.Params = dp
	d.Deps = []string{g.ID}
	d.Publish = map[string]string{}
	for _, m := range dp.Maps {
		d.Publish[MapOutput(m)] = MapPath(a.ID, m)
	}
	src := OutputRef{g.ID, ImageOutput}
	maxSize, mem, step := pl.lim.MaxImageSize, pl.mem, sizeStep(mf.info)
	d.Run = func(ctx context.Context, r *pipeline.Run) error {
		if sz, ok := inputSize(r, src, maxSize); ok {
			est := func(w, h int) (sampler.Memory, error) { return deriveMemory(sz.at(w, h), dp.MetallicMap), nil }
			m, _ := est(sz.W, sz.H)
			release, err := mem.admit(ctx, r.Log, fmt.Sprintf("derive the PBR maps of a %dx%d albedo", sz.W, sz.H), m,
				func(fits func(sampler.Memory) bool) string { return sizeAdvice(a, sz.W, sz.H, step, est, fits) })
			if err != nil {
				return err
			}
			defer release()
		}
		return derive(ctx, r, src, dp, maxSize)
	}
	pl.stages = append(pl.stages, d)
}

// derive runs a derive stage: the PBR maps of the albedo, each written with
// the albedo's recipe plus the derivation's parameters.
func derive(ctx context.Context, r *pipeline.Run, src OutputRef, dp deriveParams, maxSize int) error {
	img, rec, err := readInput(r, src, maxSize)
	if err != nil {
		return err
	}
	albedo := imageops.FromImage(img)
	o := imageops.DefaultPBROptions()
	if o.Edges, err = imageops.ParseTile(dp.Tile); err != nil {
		return err
	}
	// normal_strength 1 is kiln's tuned default strength.
	o.NormalStrength = imageops.DefaultPBROptions().NormalStrength * dp.NormalStrength
	o.DirectX = dp.DirectX
	o.RoughnessMin, o.RoughnessMax = dp.Roughness[0], dp.Roughness[1]
	o.Metallic = dp.Metallic
	if dp.MetallicMap {
		o.MetallicMap = MetallicFromAlbedo(albedo)
	}
	maps, err := imageops.DerivePBR(ctx, albedo, o)
	if err != nil {
		return err
	}
	base := cloneRecipe(rec)
	base.Extra["normal_strength"] = formatFloat(dp.NormalStrength)
	if dp.DirectX {
		base.Extra["normal_y"] = "directx"
	}
	base.Extra["roughness"] = formatFloat(dp.Roughness[0]) + "," + formatFloat(dp.Roughness[1])
	if dp.MetallicMap {
		base.Extra["metallic"] = "map"
	} else {
		base.Extra["metallic"] = formatFloat(dp.Metallic)
	}
	for i, m := range dp.Maps {
		if err := ctx.Err(); err != nil {
			return err
		}
		var out image.Image
		switch m {
		case manifests.MapNormal:
			out = maps.Normal.NRGBA()
		case manifests.MapHeight:
			out = maps.Height.Gray16() // 16 bits: heights must not band
		case manifests.MapRoughness:
			out = maps.Roughness.Gray()
		case manifests.MapAO:
			out = maps.AO.Gray()
		case manifests.MapORM:
			out = maps.ORM.NRGBA()
		case manifests.MapMetallic:
			out = maps.Metallic.Gray()
		default:
			return fmt.Errorf("unknown texture map %q", m)
		}
		mr := cloneRecipe(base)
		mr.Extra["map"] = m
		if err := writePNG(r, MapOutput(m), out, mr); err != nil {
			return err
		}
		r.Progress(i+1, len(dp.Maps))
	}
	return nil
}

// MetallicFromAlbedo estimates a metallic map (one channel) from an albedo,
// for `metallic: map`: bright, unsaturated pixels read as bare metal
// (steel, silver, aluminium), everything else as dielectric. It is a
// heuristic for a first pass an artist touches up: gold and copper are
// saturated and come out non-metallic.
func MetallicFromAlbedo(albedo *imageops.Float) *imageops.Float {
	out := imageops.NewFloat(albedo.W, albedo.H, 1)
	c := albedo.C
	for i := 0; i < albedo.W*albedo.H; i++ {
		p := albedo.Pix[i*c:]
		var r, g, b float64
		if c >= 3 {
			r, g, b = float64(p[0]), float64(p[1]), float64(p[2])
		} else {
			r = float64(p[0])
			g, b = r, r
		}
		hi := math.Max(r, math.Max(g, b))
		lo := math.Min(r, math.Min(g, b))
		sat := 0.0
		if hi > 0 {
			sat = (hi - lo) / hi
		}
		lum := 0.2126*r + 0.7152*g + 0.0722*b
		out.Pix[i] = float32(smoothstep(0.35, 0.75, lum) * (1 - smoothstep(0.15, 0.45, sat)))
	}
	return out
}

func smoothstep(e0, e1, x float64) float64 {
	t := math.Max(0, math.Min(1, (x-e0)/(e1-e0)))
	return t * t * (3 - 2*t)
}
