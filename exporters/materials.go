package exporters

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path"
	"testing/fstest"

	"github.com/kiln-dev/kiln/exporters/gltf"
	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
)

// materialVersion changes whenever a material stage would write different
// bytes for the same inputs.
const materialVersion = "1"

// MaterialStage is the ID of material id's export stage.
func MaterialStage(id string) string { return id + ":material" }

// slot is one texture slot of a material and where its image comes from.
type slot struct {
	name string
	ref  *manifests.TexRef
	out  generators.OutputRef
	// file is the published file name of the image when it sits in the
	// material's own folder (an inline material on a texture asset), so the
	// .gltf can reference it instead of writing a copy.
	file string
}

// materialStage plans the glTF export of material m.
func materialStage(p *manifests.Project, m *manifests.Material) (pipeline.Stage, error) {
	var errs manifests.ErrorList
	var slots []slot
	add := func(name string, ref *manifests.TexRef) {
		if ref == nil {
			return
		}
		a := p.Asset(ref.Asset)
		if a == nil {
			errs = append(errs, &manifests.Error{Pos: ref.Pos, Field: name, Msg: fmt.Sprintf("unknown asset %q", ref.Asset), Hint: "name an asset of this project"})
			return
		}
		out, err := generators.MapImage(a, ref.Map)
		if err != nil {
			errs = append(errs, &manifests.Error{Pos: ref.Pos, Field: name, Msg: err.Error()})
			return
		}
		s := slot{name: name, ref: ref, out: out}
		if m.Owner != "" && ref.Asset == m.Owner && a.Kind == manifests.KindTexture {
			mp := ref.Map
			if mp == "" {
				mp = manifests.MapAlbedo
			}
			if mp == manifests.MapAlbedo {
				s.file = path.Base(generators.MainPath(a.ID))
			} else {
				s.file = path.Base(generators.MapPath(a.ID, mp))
			}
		}
		slots = append(slots, s)
	}
	add("base_color", m.BaseColor)
	add("metallic_roughness", m.MetallicRoughness)
	add("normal", m.Normal)
	add("occlusion", m.Occlusion)
	add("emissive", m.Emissive)
	if len(errs) > 0 {
		return pipeline.Stage{}, errs
	}

	tileable := false
	for _, s := range slots {
		if a := p.Asset(s.ref.Asset); a != nil && assetTiles(a) {
			tileable = true
		}
	}
	name := path.Base(m.ID)
	dir := path.Dir(m.ID)
	publish := map[string]string{}
	var deps []string
	depWhere := map[string]string{}
	for _, s := range slots {
		if _, ok := depWhere[s.out.Stage]; !ok {
			deps = append(deps, s.out.Stage)
			depWhere[s.out.Stage] = s.ref.Pos.String()
		}
	}
	// Output names are file names; the gltf encoder decides the PNG names,
	// so the planner predicts them the same way to publish them.
	formats := m.Formats
	if len(formats) == 0 {
		formats = []string{"gltf"}
	}
	params := map[string]any{
		"slots":    slotParams(slots),
		"factors":  []any{m.BaseColorFactor, m.MetallicFactor, m.RoughnessFactor, m.NormalScale, m.OcclusionStrength, m.EmissiveFactor, m.EmissiveStrength},
		"set":      setFactors(m),
		"alpha":    []any{m.AlphaMode, m.AlphaCutoff},
		"double":   m.DoubleSided,
		"repeat":   m.Repeat,
		"formats":  formats,
		"preview":  m.Preview,
		"tileable": tileable,
	}
	mat := func(inputs map[string][]byte, glb bool) gltf.Material {
		g := gltf.Material{
			Name:              name,
			BaseColorFactor:   m.BaseColorFactor,
			NormalScale:       m.NormalScale,
			OcclusionStrength: m.OcclusionStrength,
			EmissiveFactor:    m.EmissiveFactor,
			EmissiveStrength:  m.EmissiveStrength,
			AlphaMode:         gltf.AlphaMode(m.AlphaMode),
			DoubleSided:       m.DoubleSided,
			Tileable:          tileable,
			Repeat:            m.Repeat,
			Preview:           gltf.Preview(m.Preview),
		}
		if m.AlphaMode == string(gltf.AlphaMask) {
			g.AlphaCutoff = m.AlphaCutoff
		}
		if _, ok := m.Where["metallic_factor"]; ok {
			v := m.MetallicFactor
			g.Metallic = &v
		}
		if _, ok := m.Where["roughness_factor"]; ok {
			v := m.RoughnessFactor
			g.Roughness = &v
		}
		for _, s := range slots {
			t := &gltf.Texture{PNG: inputs[s.name]}
			if s.file != "" && !glb {
				t = &gltf.Texture{File: s.file}
			}
			switch s.name {
			case "base_color":
				g.BaseColor = t
			case "metallic_roughness":
				g.MetallicRoughness = t
			case "normal":
				g.Normal = t
			case "occlusion":
				g.Occlusion = t
			case "emissive":
				g.Emissive = t
			}
		}
		return g
	}
	// Predict the files of the .gltf so they can be published.
	if containsString(formats, "gltf") {
		files, err := gltf.EncodeGLTF(name, mat(placeholders(slots), false), placeholderFS(slots))
		if err != nil {
			return pipeline.Stage{}, manifests.ErrorList{{Pos: m.Pos, Field: "material", Msg: err.Error()}}
		}
		for _, f := range files {
			publish[f.Name] = path.Join(dir, f.Name)
		}
	}
	if containsString(formats, "glb") {
		publish[name+".glb"] = path.Join(dir, name+".glb")
	}

	return pipeline.Stage{
		ID:       MaterialStage(m.ID),
		Asset:    m.ID,
		Kind:     "material.gltf",
		Version:  materialVersion,
		Params:   params,
		Deps:     deps,
		DepWhere: depWhere,
		Where:    m.Pos.String(),
		Publish:  publish,
		Run: func(ctx context.Context, r *pipeline.Run) error {
			inputs := map[string][]byte{}
			fsys := fstest.MapFS{}
			for _, s := range slots {
				p, err := r.Input(s.out.Stage, s.out.Output)
				if err != nil {
					return err
				}
				data, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("read %s of %s: %w", s.name, s.ref, err)
				}
				inputs[s.name] = data
				if s.file != "" {
					fsys[s.file] = &fstest.MapFile{Data: data}
				}
			}
			if containsString(formats, "gltf") {
				files, err := gltf.EncodeGLTF(name, mat(inputs, false), fsys)
				if err != nil {
					return fmt.Errorf("material %s: %w", m.ID, err)
				}
				for _, f := range files {
					if err := r.WriteFile(f.Name, f.Data); err != nil {
						return err
					}
				}
			}
			if containsString(formats, "glb") {
				data, err := gltf.EncodeGLB(mat(inputs, true), nil)
				if err != nil {
					return fmt.Errorf("material %s: %w", m.ID, err)
				}
				if err := r.WriteFile(name+".glb", data); err != nil {
					return err
				}
			}
			return nil
		},
	}, nil
}

// placeholders returns a distinct 1x1 PNG per distinct input image, so
// that encoding them predicts which files the real export writes (the
// encoder shares one image between slots that read the same output).
func placeholders(slots []slot) map[string][]byte {
	out := map[string][]byte{}
	ids := map[generators.OutputRef]int{}
	for _, s := range slots {
		id, ok := ids[s.out]
		if !ok {
			id = len(ids)
			ids[s.out] = id
		}
		out[s.name] = onePixelPNG(id)
	}
	return out
}

// placeholderFS serves the placeholders of slots that reference files.
func placeholderFS(slots []slot) fstest.MapFS {
	ph := placeholders(slots)
	fsys := fstest.MapFS{}
	for _, s := range slots {
		if s.file != "" {
			fsys[s.file] = &fstest.MapFile{Data: ph[s.name]}
		}
	}
	return fsys
}

// onePixelPNG encodes a 1x1 image whose colour encodes id.
func onePixelPNG(id int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.SetNRGBA(0, 0, color.NRGBA{uint8(id), uint8(id >> 8), 0, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err) // an in-memory 1x1 image always encodes
	}
	return buf.Bytes()
}

// slotParams lists each slot's source for the cache key.
func slotParams(slots []slot) []string {
	out := make([]string, len(slots))
	for i, s := range slots {
		out[i] = s.name + "=" + s.out.Stage + "/" + s.out.Output + "@" + s.file
	}
	return out
}

// setFactors lists which optional factors the manifest set, since an unset
// factor takes a default that depends on the textures.
func setFactors(m *manifests.Material) []string {
	var out []string
	for _, f := range []string{"metallic_factor", "roughness_factor"} {
		if _, ok := m.Where[f]; ok {
			out = append(out, f)
		}
	}
	return out
}

// assetTiles reports whether an asset's images wrap around, so material
// samplers repeat instead of clamping.
func assetTiles(a *manifests.Asset) bool {
	switch {
	case a.Kind == manifests.KindTileable:
		return true
	case a.Kind == manifests.KindTexture && a.Texture != nil:
		return a.Texture.Tile != "" && a.Texture.Tile != manifests.TileNone
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
