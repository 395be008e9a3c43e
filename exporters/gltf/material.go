package gltf

import (
	"errors"
	"fmt"
	"image"
	"math"
	"strings"
)

// AlphaMode says how a renderer treats the base colour's alpha.
type AlphaMode string

// The glTF alpha modes.
const (
	// AlphaOpaque ignores alpha: the surface is fully opaque.
	AlphaOpaque AlphaMode = "OPAQUE"
	// AlphaMask renders a texel fully opaque when its alpha is at least
	// Material.AlphaCutoff and not at all otherwise (foliage, fences).
	AlphaMask AlphaMode = "MASK"
	// AlphaBlend blends the surface over what is behind it (glass, smoke).
	AlphaBlend AlphaMode = "BLEND"
)

// Texture is one image a material samples. Exactly one of PNG, Image and File
// is set.
type Texture struct {
	// PNG is an encoded PNG. Colour-space chunks (gAMA, cHRM, iCCP, sRGB,
	// cICP, mDCV, cLLI), the pixel-aspect chunk (pHYs) and animation chunks
	// (acTL, fcTL, fdAT) are dropped when the bytes are written, because
	// glTF fixes each slot's colour space (sRGB for base colour and
	// emissive, linear for the others) and engines must not reinterpret it.
	// Text chunks, such as kiln's recipe, are kept.
	PNG []byte
	// Image is encoded as PNG by the exporter.
	Image image.Image
	// File names an existing PNG, as a slash-separated path relative to the
	// folder the .gltf is written to (for example "floor_albedo.png" or
	// "textures/floor_orm.png"). A .gltf references it without copying it,
	// unless it carries chunks the PNG field's comment says are dropped:
	// then a clean copy is written as for a PNG source. A .glb embeds its
	// (clean) bytes. It is read through the fs.FS given to the encoder,
	// which is rooted at that folder.
	File string
	// Name is the file name a PNG or Image source is written under beside
	// the .gltf, e.g. "floor_albedo.png". Empty means "<name>_<slot>.png",
	// where slot is basecolor, metallicroughness, orm, normal, occlusion or
	// emissive. Name is ignored for File sources that are referenced.
	Name string
}

// Material describes one glTF 2.0 metallic-roughness material and the preview
// mesh it is shown on. It mirrors the manifest's material fields; zero values
// mean the glTF default unless a field says otherwise.
type Material struct {
	// Name is the material's name inside the file; empty means the file
	// name (for .gltf) or "material" (for .glb).
	Name string

	// BaseColor is the albedo, in sRGB; alpha is used by AlphaMask and
	// AlphaBlend.
	BaseColor *Texture
	// BaseColorFactor multiplies BaseColor (linear RGBA, each in [0, 1]).
	// All zero means the default, opaque white.
	BaseColorFactor [4]float64

	// MetallicRoughness is the linear metallic-roughness map: G is
	// roughness, B is metallic. An ORM image (R = ambient occlusion) serves
	// here and as Occlusion at once.
	MetallicRoughness *Texture
	// Metallic and Roughness are the factors in [0, 1] that multiply the
	// map's channels, or give the value when there is no map. Nil Metallic
	// means 1 with a map (the map alone decides) and 0 without one (a
	// dielectric, what most textures are); nil Roughness means 1.
	Metallic  *float64
	Roughness *float64

	// Normal is a tangent-space normal map in the OpenGL convention (+Y,
	// green up), which is glTF's.
	Normal *Texture
	// NormalScale scales the map's X and Y; 0 means 1.
	NormalScale float64

	// Occlusion is the ambient-occlusion map, read from its R channel. It
	// may be the same image as MetallicRoughness (ORM packing); the file
	// then holds that image and its texture once. Images are shared
	// whenever two slots name the same File or carry identical bytes.
	Occlusion *Texture
	// OcclusionStrength in [0, 1] scales the occlusion; 0 means 1.
	OcclusionStrength float64

	// Emissive is the emitted light, in sRGB.
	Emissive *Texture
	// EmissiveFactor (linear RGB, each in [0, 1]) multiplies Emissive, or is
	// the emission when there is no map. All zero with an Emissive map
	// means white (the map alone decides).
	EmissiveFactor [3]float64
	// EmissiveStrength scales the emission beyond the [0, 1] range of the
	// factor (HDR glow). Above 1 it is written with
	// KHR_materials_emissive_strength; below 1 it is folded into
	// EmissiveFactor; 0 means 1.
	EmissiveStrength float64

	// AlphaMode is OPAQUE, MASK or BLEND; empty means OPAQUE.
	AlphaMode AlphaMode
	// AlphaCutoff is MASK's threshold, at least 0; 0 means 0.5. It is an
	// error with another alpha mode.
	AlphaCutoff float64
	// DoubleSided renders back faces too (foliage cards, cloth).
	DoubleSided bool

	// Tileable selects REPEAT wrapping for every texture; otherwise textures
	// clamp to their edges, so a non-tiling texture's borders do not bleed
	// into each other under linear filtering.
	Tileable bool
	// Repeat is how many times the textures repeat across the preview
	// mesh's faces along u and v, written as a KHR_texture_transform scale
	// on every texture. Both zero means once; otherwise each must be > 0.
	Repeat [2]float64

	// Preview selects the preview mesh; empty means PreviewSphere.
	Preview Preview
}

// resolved is a Material with defaults applied and every value checked.
type resolved struct {
	name             string
	baseColorFactor  [4]float64
	metallic         float64
	roughness        float64
	normalScale      float64
	occlusion        float64
	emissiveFactor   [3]float64
	emissiveStrength float64 // > 1 only when the extension is needed, else 1
	alphaMode        AlphaMode
	alphaCutoff      float64 // only meaningful for MASK
	repeat           [2]float64
	transform        bool // repeat differs from [1, 1]
	preview          Preview
}

// resolve applies the documented defaults and checks every value, reporting
// all problems at once.
func (m *Material) resolve(defaultName string) (*resolved, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	finite := func(field string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad("%s is %v: use a finite number", field, v)
			return false
		}
		return true
	}
	unit := func(field string, v float64) {
		if finite(field, v) && (v < 0 || v > 1) {
			bad("%s is %v: use a value in [0, 1]", field, v)
		}
	}

	r := &resolved{name: m.Name}
	if r.name == "" {
		r.name = defaultName
	}

	r.baseColorFactor = m.BaseColorFactor
	if r.baseColorFactor == [4]float64{} {
		r.baseColorFactor = [4]float64{1, 1, 1, 1}
	}
	for i, v := range r.baseColorFactor {
		unit(fmt.Sprintf("base color factor[%d]", i), v)
	}

	switch {
	case m.Metallic != nil:
		r.metallic = *m.Metallic
	case m.MetallicRoughness != nil:
		r.metallic = 1
	}
	unit("metallic", r.metallic)
	r.roughness = 1
	if m.Roughness != nil {
		r.roughness = *m.Roughness
	}
	unit("roughness", r.roughness)

	r.normalScale = m.NormalScale
	if r.normalScale == 0 {
		r.normalScale = 1
	}
	finite("normal scale", r.normalScale)

	r.occlusion = m.OcclusionStrength
	if r.occlusion == 0 {
		r.occlusion = 1
	}
	unit("occlusion strength", r.occlusion)

	r.emissiveFactor = m.EmissiveFactor
	if r.emissiveFactor == [3]float64{} && m.Emissive != nil {
		r.emissiveFactor = [3]float64{1, 1, 1}
	}
	for i, v := range r.emissiveFactor {
		unit(fmt.Sprintf("emissive factor[%d]", i), v)
	}
	r.emissiveStrength = m.EmissiveStrength
	if r.emissiveStrength == 0 {
		r.emissiveStrength = 1
	}
	if finite("emissive strength", r.emissiveStrength) {
		switch {
		case r.emissiveStrength < 0:
			bad("emissive strength is %v: use a value of 0 or more", r.emissiveStrength)
		case r.emissiveStrength < 1:
			for i := range r.emissiveFactor {
				r.emissiveFactor[i] *= r.emissiveStrength
			}
			r.emissiveStrength = 1
		case r.emissiveStrength > 1 && r.emissiveFactor == [3]float64{}:
			bad("emissive strength is %v but nothing emits: set an emissive texture or a non-zero emissive factor", r.emissiveStrength)
		}
	}

	r.alphaMode = m.AlphaMode
	if r.alphaMode == "" {
		r.alphaMode = AlphaOpaque
	}
	switch r.alphaMode {
	case AlphaOpaque, AlphaMask, AlphaBlend:
	default:
		if up := AlphaMode(strings.ToUpper(string(r.alphaMode))); up == AlphaOpaque || up == AlphaMask || up == AlphaBlend {
			bad("alpha mode %q is not upper case: use %q", r.alphaMode, up)
		} else {
			bad("alpha mode %q is unknown: use %q, %q or %q", r.alphaMode, AlphaOpaque, AlphaMask, AlphaBlend)
		}
	}
	if finite("alpha cutoff", m.AlphaCutoff) {
		switch {
		case m.AlphaCutoff < 0:
			bad("alpha cutoff is %v: use a value of 0 or more", m.AlphaCutoff)
		case m.AlphaCutoff != 0 && r.alphaMode != AlphaMask:
			bad("alpha cutoff %v only applies to alpha mode %q, not %q: set the mode to %q or drop the cutoff", m.AlphaCutoff, AlphaMask, r.alphaMode, AlphaMask)
		}
	}
	r.alphaCutoff = m.AlphaCutoff
	if r.alphaCutoff == 0 {
		r.alphaCutoff = 0.5
	}

	r.repeat = m.Repeat
	if r.repeat == [2]float64{} {
		r.repeat = [2]float64{1, 1}
	}
	for i, v := range r.repeat {
		if finite(fmt.Sprintf("repeat[%d]", i), v) && v <= 0 {
			bad("repeat[%d] is %v: use a count greater than 0 (or leave both at 0 for once)", i, v)
		}
	}
	r.transform = r.repeat != [2]float64{1, 1}

	r.preview = m.Preview
	if r.preview == "" {
		r.preview = PreviewSphere
	}
	switch r.preview {
	case PreviewPlane, PreviewCube, PreviewSphere:
	default:
		bad("preview %q is unknown: use %q, %q or %q", r.preview, PreviewPlane, PreviewCube, PreviewSphere)
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}
