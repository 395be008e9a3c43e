package imageops

import (
	"context"
	"fmt"
	"math"
)

// ReferenceSize is the texture size, in pixels along the larger side, at
// which the pixel radii of [DerivePBR] are defined. At other sizes every
// radius (and the normal strength, a slope per pixel) is scaled by
// size/ReferenceSize, so the same material looks the same at 256 and 4096.
const ReferenceSize = 512

// PBROptions controls [DerivePBR]. Start from [DefaultPBROptions]: the zero
// value is valid but derives flat normals and a constant roughness of 0.
type PBROptions struct {
	// Edges are the edge modes; Wrap on both axes for a `tile: xy`
	// texture, so every derived map tiles too.
	Edges Edges
	// HeightSigma is the standard deviation, in pixels, of the blur whose
	// result is subtracted from the luminance to remove low frequencies
	// (lighting gradients, large colour areas). 0 means the larger side / 16.
	HeightSigma float64
	// NormalStrength multiplies the height slope (height units per pixel
	// at ReferenceSize) before the normal is built; 0 gives flat normals.
	NormalStrength float64
	// DirectX flips the normal map's green channel (Y down, the DirectX /
	// Unreal convention). The default is OpenGL (Y up, glTF, Godot, Blender).
	DirectX bool
	// RoughnessMin and RoughnessMax bound the roughness map; the derived
	// estimate is stretched over this range. Both in [0,1], Min <= Max.
	RoughnessMin, RoughnessMax float64
	// AOStrength scales the cavity depth into occlusion: 0 gives an AO map
	// of 1 everywhere, larger values darken cavities more.
	AOStrength float64
	// Metallic is the constant metalness used when MetallicMap is nil.
	Metallic float64
	// MetallicMap, if set, is the metalness map (its luma is used); it
	// must have the albedo's size.
	MetallicMap *Float
}

// DefaultPBROptions returns the options kiln uses when a manifest does not
// say otherwise: clamped edges, auto height blur, strength 4 OpenGL normals,
// roughness in [0.35, 0.95], AO strength 2, non-metallic.
func DefaultPBROptions() PBROptions {
	return PBROptions{
		NormalStrength: 4,
		RoughnessMin:   0.35,
		RoughnessMax:   0.95,
		AOStrength:     2,
	}
}

// PBRMaps are the maps derived from one albedo. Height, Roughness, AO and
// Metallic have one channel; Normal and ORM have three.
type PBRMaps struct {
	// Height is in [0,1]; 0.5 is the mean surface.
	Height *Float
	// Normal is tangent-space, encoded as n*0.5+0.5 per channel.
	Normal *Float
	// Roughness is in [RoughnessMin, RoughnessMax].
	Roughness *Float
	// AO is ambient occlusion, 1 = unoccluded.
	AO *Float
	// Metallic is the metalness map (constant unless a map was given).
	Metallic *Float
	// ORM packs AO, roughness and metallic into R, G and B, the glTF
	// occlusion/metallic-roughness layout.
	ORM *Float
}

// validate checks o against an albedo of size w×h.
func (o *PBROptions) validate(w, h int) error {
	num := func(name string, v, lo, hi float64) error {
		if !finite(v) || v < lo || v > hi {
			return fmt.Errorf("%s %v: want a number in [%v, %v]", name, v, lo, hi)
		}
		return nil
	}
	checks := []error{
		num("height sigma", o.HeightSigma, 0, math.MaxFloat32),
		num("normal strength", o.NormalStrength, 0, 1e6),
		num("roughness min", o.RoughnessMin, 0, 1),
		num("roughness max", o.RoughnessMax, 0, 1),
		num("ao strength", o.AOStrength, 0, 1e6),
		num("metallic", o.Metallic, 0, 1),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if o.RoughnessMin > o.RoughnessMax {
		return fmt.Errorf("roughness range [%v, %v]: min is above max", o.RoughnessMin, o.RoughnessMax)
	}
	if m := o.MetallicMap; m != nil && (m.W != w || m.H != h) {
		return fmt.Errorf("metallic map is %dx%d, want the albedo's %dx%d", m.W, m.H, w, h)
	}
	return nil
}

// DerivePBR derives height, normal, roughness, AO, metallic and ORM maps
// from an albedo (any channel count; alpha is ignored). It checks ctx
// between maps, so a cancelled build stops within one map's work.
func DerivePBR(ctx context.Context, albedo *Float, o PBROptions) (*PBRMaps, error) {
	if albedo.Empty() {
		return nil, fmt.Errorf("derive PBR maps: albedo is empty")
	}
	if err := o.validate(albedo.W, albedo.H); err != nil {
		return nil, fmt.Errorf("derive PBR maps: %w", err)
	}
	scale := float64(max(albedo.W, albedo.H)) / ReferenceSize
	sigma := o.HeightSigma
	if sigma == 0 {
		sigma = float64(max(albedo.W, albedo.H)) / 16
	}
	m := &PBRMaps{}
	steps := []func(){
		func() { m.Height = Height(albedo, sigma, o.Edges) },
		func() { m.Normal = Normal(m.Height, o.NormalStrength*scale, o.DirectX, o.Edges) },
		func() {
			m.Roughness = Roughness(albedo, o.RoughnessMin, o.RoughnessMax, math.Max(1, 2*scale), o.Edges)
		},
		func() { m.AO = AmbientOcclusion(m.Height, o.AOStrength, scale, o.Edges) },
		func() {
			if o.MetallicMap != nil {
				m.Metallic = Luminance(o.MetallicMap)
			} else {
				m.Metallic = Constant(albedo.W, albedo.H, float32(o.Metallic))
			}
		},
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("derive PBR maps: %w", err)
		}
		step()
	}
	orm, err := PackORM(m.AO, m.Roughness, m.Metallic)
	if err != nil {
		return nil, fmt.Errorf("derive PBR maps: %w", err)
	}
	m.ORM = orm
	return m, nil
}

// Height derives a height map from an albedo: its luminance minus a
// Gaussian blur of standard deviation sigma (removing shading gradients and
// large colour areas, keeping surface detail), stretched so the 0.5th and
// 99.5th percentiles map to 0 and 1. Bright reads as high, as it does in
// most albedos (mortar and cracks are darker than what surrounds them). An
// image with no detail at all gives 0.5 everywhere.
func Height(albedo *Float, sigma float64, e Edges) *Float {
	lum := Luminance(albedo)
	if lum.Empty() {
		return lum
	}
	low := Blur(lum, sigma, e)
	for i := range lum.Pix {
		lum.Pix[i] -= low.Pix[i]
	}
	q, _, _ := percentiles(lum.Pix, 0.005, 0.995)
	stretch(lum.Pix, q[0], q[1], 0, 1, 0.5)
	return lum
}

// Normal builds a tangent-space normal map from a one-channel height map:
// the slope is the Sobel gradient normalised so that a ramp rising k per
// pixel has slope k, and the normal is normalize(-s·∂h/∂x, ±s·∂h/∂y, 1)
// with s = strength. Image y points down; in the OpenGL convention (green
// = +Y = up the image) a height rising down the image tilts the normal up,
// so green is above 128; directX inverts green. The result has three
// channels encoded as n*0.5+0.5, so a flat area is (0.5, 0.5, 1), i.e.
// (128, 128, 255).
func Normal(height *Float, strength float64, directX bool, e Edges) *Float {
	h := height
	if h.C != 1 {
		h = Luminance(height)
	}
	out := NewFloat(h.W, h.H, 3)
	if h.Empty() {
		return out
	}
	w := h.W
	xt := e.X.table(w, 1, 1)
	yt := e.Y.table(h.H, 1, 1)
	ySign := 1.0
	if directX {
		ySign = -1
	}
	parallel(h.H, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			up := h.Pix[yt[y]*w : yt[y]*w+w]
			mid := h.Pix[yt[y+1]*w : yt[y+1]*w+w]
			down := h.Pix[yt[y+2]*w : yt[y+2]*w+w]
			for x := 0; x < w; x++ {
				l, r := xt[x], xt[x+2]
				gx := (float64(up[r]-up[l]) + 2*float64(mid[r]-mid[l]) + float64(down[r]-down[l])) / 8
				gy := (float64(down[l]-up[l]) + 2*float64(down[x]-up[x]) + float64(down[r]-up[r])) / 8
				nx := -strength * gx
				ny := ySign * strength * gy
				inv := 1 / math.Sqrt(nx*nx+ny*ny+1)
				o := out.Pix[(y*w+x)*3:]
				o[0] = float32(nx*inv*0.5 + 0.5)
				o[1] = float32(ny*inv*0.5 + 0.5)
				o[2] = float32(inv*0.5 + 0.5)
			}
		}
	})
	return out
}

// Roughness estimates a roughness map from an albedo. Over a Gaussian
// window of standard deviation sigma it takes the local mean luminance μ
// and standard deviation σ; the estimate (1-μ) + σ says dark and busy
// areas are rough, bright and even ones smoother. The estimate's 1st..99th
// percentile range is stretched over [lo, hi]; an image where it does not
// vary gets (lo+hi)/2 everywhere.
func Roughness(albedo *Float, lo, hi, sigma float64, e Edges) *Float {
	lum := Luminance(albedo)
	if lum.Empty() {
		return lum
	}
	sq := NewFloat(lum.W, lum.H, 1)
	for i, v := range lum.Pix {
		sq.Pix[i] = v * v
	}
	mean := Blur(lum, sigma, e)
	meanSq := Blur(sq, sigma, e)
	est := lum // reuse the buffer
	for i := range est.Pix {
		m := float64(mean.Pix[i])
		v := math.Max(0, float64(meanSq.Pix[i])-m*m)
		est.Pix[i] = float32((1 - m) + math.Sqrt(v))
	}
	q, _, _ := percentiles(est.Pix, 0.01, 0.99)
	stretch(est.Pix, q[0], q[1], lo, hi, (lo+hi)/2)
	return est
}

// aoRadii are the blur sigmas, in pixels at ReferenceSize, at which
// AmbientOcclusion looks for cavities: fine cracks to broad dents.
var aoRadii = [...]float64{2, 4, 8, 16}

// AmbientOcclusion estimates ambient occlusion from a one-channel height
// map: at each of four scales (sigma 2, 4, 8 and 16 pixels times scale) the
// cavity depth is how far the pixel lies below the Gaussian-weighted mean
// height around it (0 where it is above); AO = 1 - strength × mean cavity
// depth, clamped to [0,1]. A pixel deep in a pit, whose surroundings rise
// at every scale, gets the darkest value; flat or raised areas get 1. It is
// a cheap cavity estimate rather than ray-traced horizons, and it is O(pixels)
// at any scale.
func AmbientOcclusion(height *Float, strength, scale float64, e Edges) *Float {
	h := height
	if h.C != 1 {
		h = Luminance(height)
	}
	acc := make([]float32, len(h.Pix))
	for _, r := range aoRadii {
		b := Blur(h, r*scale, e)
		bp := b.Pix[:len(h.Pix)]
		acc := acc[:len(h.Pix)]
		for i, v := range h.Pix {
			acc[i] += max(bp[i]-v, 0) // branchless: cavities are random on noisy heights
		}
	}
	out := NewFloat(h.W, h.H, 1)
	k := strength / float64(len(aoRadii))
	for i, a := range acc {
		out.Pix[i] = float32(clamp01(1 - k*float64(a)))
	}
	return out
}

// PackORM packs three one-channel maps of equal size into the glTF
// occlusion-roughness-metallic layout: R = ao, G = roughness, B = metallic.
func PackORM(ao, roughness, metallic *Float) (*Float, error) {
	maps := []*Float{ao, roughness, metallic}
	names := []string{"ao", "roughness", "metallic"}
	for i, m := range maps {
		if m == nil || m.C != 1 {
			return nil, fmt.Errorf("pack ORM: %s map must be a one-channel image", names[i])
		}
		if m.W != ao.W || m.H != ao.H {
			return nil, fmt.Errorf("pack ORM: %s map is %dx%d, ao map is %dx%d", names[i], m.W, m.H, ao.W, ao.H)
		}
	}
	out := NewFloat(ao.W, ao.H, 3)
	for i := range ao.Pix {
		out.Pix[3*i] = ao.Pix[i]
		out.Pix[3*i+1] = roughness.Pix[i]
		out.Pix[3*i+2] = metallic.Pix[i]
	}
	return out, nil
}
