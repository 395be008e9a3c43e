package gltf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	qgltf "github.com/qmuntal/gltf"
	"github.com/qmuntal/gltf/ext/texturetransform"
	"github.com/qmuntal/gltf/modeler"
)

// want is what a decoded file must hold. Texture slots map to texture
// indices; a missing slot has no texture.
type want struct {
	images     []string           // image names, in order
	imageFiles []string           // .gltf image URIs (unescaped), in order
	imageData  [][]byte           // bytes of each image
	slots      map[string]int     // slot → texture index
	wrap       qgltf.WrappingMode // sampler wrapping, when there are textures

	baseColorFactor   [4]float64
	metallic          float64
	roughness         float64
	normalScale       float64
	occlusionStrength float64
	emissiveFactor    [3]float64
	emissiveStrength  float64 // 0: no KHR_materials_emissive_strength
	alphaMode         qgltf.AlphaMode
	alphaCutoff       float64 // as decoded: 0.5 unless MASK says otherwise
	doubleSided       bool
	repeat            [2]float64 // zero: no KHR_texture_transform
	extensionsUsed    []string

	name     string
	preview  Preview
	files    []string // .gltf output file names, in order
	tangents bool
	uvs      bool
}

// testTextures are the sources the cases share.
type testTextures struct {
	basePNG, normalPNG, emissivePNG, ormPNG, aoPNG, mrPNG []byte
	dirty, dirtyClean                                     []byte // PNG with chunks glTF forbids, and without them
}

func newTestTextures(t *testing.T) *testTextures {
	tx := &testTextures{
		basePNG:     encodePNG(t, testImage(16, 1)),
		normalPNG:   encodePNG(t, testImage(16, 2)),
		emissivePNG: encodePNG(t, testImage(8, 3)),
		ormPNG:      encodePNG(t, ormImage(16)),
		aoPNG:       encodePNG(t, testImage(16, 4)),
		mrPNG:       encodePNG(t, testImage(16, 5)),
	}
	text := pngChunk("tEXt", []byte("prompt\x00mossy stone floor"))
	tx.dirty = withChunks(tx.basePNG,
		pngChunk("gAMA", binary.BigEndian.AppendUint32(nil, 45455)),
		pngChunk("cHRM", make([]byte, 32)),
		pngChunk("iCCP", append([]byte("profile\x00\x00"), 0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01)),
		pngChunk("sRGB", []byte{0}),
		pngChunk("pHYs", []byte{0, 0, 0x0b, 0x13, 0, 0, 0x03, 0xe8, 1}),
		text,
	)
	tx.dirtyClean = withChunks(tx.basePNG, text)
	return tx
}

// defaults is the decoded view of a Material with only the given name set.
func defaults(name string) want {
	return want{
		slots:             map[string]int{},
		baseColorFactor:   [4]float64{1, 1, 1, 1},
		metallic:          0,
		roughness:         1,
		normalScale:       1,
		occlusionStrength: 1,
		alphaMode:         qgltf.AlphaOpaque,
		alphaCutoff:       0.5,
		wrap:              qgltf.WrapClampToEdge,
		name:              name,
		preview:           PreviewSphere,
		files:             []string{name + ".gltf", name + ".bin"},
	}
}

// exportCase is one material exported both ways.
type exportCase struct {
	name  string // file name (without extension) and test name
	m     func(tx *testTextures) Material
	want  func(tx *testTextures, w *want)
	setup func(t *testing.T, dir string, tx *testTextures) // writes referenced files
}

func exportCases() []exportCase {
	pngImg := func(w *want, name, file string, data []byte) {
		w.images = append(w.images, name)
		w.imageFiles = append(w.imageFiles, file)
		w.imageData = append(w.imageData, data)
		w.uvs = true
	}
	return []exportCase{
		{
			name: "factors_only",
			m: func(*testTextures) Material {
				return Material{BaseColorFactor: [4]float64{0.8, 0.2, 0.1, 1}, Metallic: qgltf.Float(0.25), Roughness: qgltf.Float(0.75)}
			},
			want: func(_ *testTextures, w *want) {
				w.baseColorFactor = [4]float64{0.8, 0.2, 0.1, 1}
				w.metallic, w.roughness = 0.25, 0.75
			},
		},
		{
			name: "base_color_only",
			m:    func(tx *testTextures) Material { return Material{BaseColor: &Texture{PNG: tx.basePNG}} },
			want: func(tx *testTextures, w *want) {
				pngImg(w, "basecolor", "base_color_only_basecolor.png", tx.basePNG)
				w.files = append(w.files, "base_color_only_basecolor.png")
				w.slots[slotBaseColor] = 0
			},
		},
		{
			name: "full_pbr_orm",
			m: func(tx *testTextures) Material {
				orm := &Texture{PNG: tx.ormPNG, Name: "stone_orm.png"}
				return Material{
					Name:              "Mossy stone",
					BaseColor:         &Texture{Image: testImage(16, 1), Name: "stone_albedo.png"},
					BaseColorFactor:   [4]float64{0.9, 0.9, 0.9, 1},
					MetallicRoughness: orm,
					Occlusion:         orm,
					OcclusionStrength: 0.8,
					Metallic:          qgltf.Float(0.5),
					Roughness:         qgltf.Float(0.9),
					Normal:            &Texture{PNG: tx.normalPNG, Name: "stone_normal.png"},
					NormalScale:       1.5,
					Preview:           PreviewCube,
				}
			},
			want: func(tx *testTextures, w *want) {
				w.name = "Mossy stone"
				w.preview = PreviewCube
				pngImg(w, "basecolor", "stone_albedo.png", tx.basePNG)
				pngImg(w, "orm", "stone_orm.png", tx.ormPNG)
				pngImg(w, "normal", "stone_normal.png", tx.normalPNG)
				w.files = append(w.files, "stone_albedo.png", "stone_orm.png", "stone_normal.png")
				w.slots = map[string]int{slotBaseColor: 0, slotMetallicRoughness: 1, slotOcclusion: 1, slotNormal: 2}
				w.baseColorFactor = [4]float64{0.9, 0.9, 0.9, 1}
				w.metallic, w.roughness = 0.5, 0.9
				w.occlusionStrength = 0.8
				w.normalScale = 1.5
				w.tangents = true
			},
		},
		{
			// Two Texture values with identical bytes are one image too;
			// nil factors with a map leave the map in charge (1, 1).
			name: "orm_shared_by_content",
			m: func(tx *testTextures) Material {
				return Material{MetallicRoughness: &Texture{PNG: tx.ormPNG}, Occlusion: &Texture{PNG: bytes.Clone(tx.ormPNG)}}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "orm", "orm_shared_by_content_orm.png", tx.ormPNG)
				w.files = append(w.files, "orm_shared_by_content_orm.png")
				w.slots = map[string]int{slotMetallicRoughness: 0, slotOcclusion: 0}
				w.metallic = 1
			},
		},
		{
			name: "separate_ao_and_mr",
			m: func(tx *testTextures) Material {
				return Material{MetallicRoughness: &Texture{PNG: tx.mrPNG}, Occlusion: &Texture{PNG: tx.aoPNG}, Metallic: qgltf.Float(0)}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "metallicroughness", "separate_ao_and_mr_metallicroughness.png", tx.mrPNG)
				pngImg(w, "occlusion", "separate_ao_and_mr_occlusion.png", tx.aoPNG)
				w.files = append(w.files, "separate_ao_and_mr_metallicroughness.png", "separate_ao_and_mr_occlusion.png")
				w.slots = map[string]int{slotMetallicRoughness: 0, slotOcclusion: 1}
			},
		},
		{
			name: "normal_scale_plane",
			m: func(tx *testTextures) Material {
				return Material{Normal: &Texture{PNG: tx.normalPNG}, NormalScale: 0.5, Preview: PreviewPlane}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "normal", "normal_scale_plane_normal.png", tx.normalPNG)
				w.files = append(w.files, "normal_scale_plane_normal.png")
				w.slots[slotNormal] = 0
				w.normalScale = 0.5
				w.tangents = true
				w.preview = PreviewPlane
			},
		},
		{
			name: "emissive_strength",
			m: func(tx *testTextures) Material {
				return Material{BaseColor: &Texture{PNG: tx.basePNG}, Emissive: &Texture{PNG: tx.emissivePNG}, EmissiveStrength: 4}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "basecolor", "emissive_strength_basecolor.png", tx.basePNG)
				pngImg(w, "emissive", "emissive_strength_emissive.png", tx.emissivePNG)
				w.files = append(w.files, "emissive_strength_basecolor.png", "emissive_strength_emissive.png")
				w.slots = map[string]int{slotBaseColor: 0, slotEmissive: 1}
				w.emissiveFactor = [3]float64{1, 1, 1}
				w.emissiveStrength = 4
				w.extensionsUsed = []string{ExtEmissiveStrength}
			},
		},
		{
			name: "emissive_factor_strength",
			m: func(*testTextures) Material {
				return Material{EmissiveFactor: [3]float64{1, 0.5, 0}, EmissiveStrength: 10, Preview: PreviewCube}
			},
			want: func(_ *testTextures, w *want) {
				w.emissiveFactor = [3]float64{1, 0.5, 0}
				w.emissiveStrength = 10
				w.extensionsUsed = []string{ExtEmissiveStrength}
				w.preview = PreviewCube
			},
		},
		{
			// A strength below 1 folds into the factor: no extension.
			name: "emissive_dim",
			m: func(*testTextures) Material {
				return Material{EmissiveFactor: [3]float64{1, 0.5, 0}, EmissiveStrength: 0.5}
			},
			want: func(_ *testTextures, w *want) {
				w.emissiveFactor = [3]float64{0.5, 0.25, 0}
			},
		},
		{
			name: "alpha_mask",
			m: func(tx *testTextures) Material {
				return Material{BaseColor: &Texture{PNG: tx.basePNG}, AlphaMode: AlphaMask, AlphaCutoff: 0.3, DoubleSided: true, Preview: PreviewPlane}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "basecolor", "alpha_mask_basecolor.png", tx.basePNG)
				w.files = append(w.files, "alpha_mask_basecolor.png")
				w.slots[slotBaseColor] = 0
				w.alphaMode, w.alphaCutoff = qgltf.AlphaMask, 0.3
				w.doubleSided = true
				w.preview = PreviewPlane
			},
		},
		{
			name: "alpha_mask_default_cutoff",
			m: func(tx *testTextures) Material {
				return Material{BaseColor: &Texture{PNG: tx.basePNG}, AlphaMode: AlphaMask}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "basecolor", "alpha_mask_default_cutoff_basecolor.png", tx.basePNG)
				w.files = append(w.files, "alpha_mask_default_cutoff_basecolor.png")
				w.slots[slotBaseColor] = 0
				w.alphaMode = qgltf.AlphaMask
			},
		},
		{
			name: "alpha_blend",
			m: func(tx *testTextures) Material {
				return Material{BaseColor: &Texture{PNG: tx.basePNG}, BaseColorFactor: [4]float64{1, 1, 1, 0.5}, AlphaMode: AlphaBlend}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "basecolor", "alpha_blend_basecolor.png", tx.basePNG)
				w.files = append(w.files, "alpha_blend_basecolor.png")
				w.slots[slotBaseColor] = 0
				w.baseColorFactor = [4]float64{1, 1, 1, 0.5}
				w.alphaMode = qgltf.AlphaBlend
			},
		},
		{
			name: "double_sided",
			m: func(*testTextures) Material {
				return Material{DoubleSided: true, Preview: PreviewPlane}
			},
			want: func(_ *testTextures, w *want) {
				w.doubleSided = true
				w.preview = PreviewPlane
			},
		},
		{
			// Every texture info carries the transform, and the tileable
			// material repeats instead of clamping.
			name: "tileable_repeat",
			m: func(tx *testTextures) Material {
				orm := &Texture{PNG: tx.ormPNG}
				return Material{
					BaseColor: &Texture{PNG: tx.basePNG}, MetallicRoughness: orm, Occlusion: orm,
					Normal: &Texture{PNG: tx.normalPNG}, Emissive: &Texture{PNG: tx.emissivePNG},
					EmissiveStrength: 2, Tileable: true, Repeat: [2]float64{4, 2}, Preview: PreviewPlane,
				}
			},
			want: func(tx *testTextures, w *want) {
				for _, im := range []struct {
					slot string
					data []byte
				}{{"basecolor", tx.basePNG}, {"orm", tx.ormPNG}, {"normal", tx.normalPNG}, {"emissive", tx.emissivePNG}} {
					pngImg(w, im.slot, "tileable_repeat_"+im.slot+".png", im.data)
					w.files = append(w.files, "tileable_repeat_"+im.slot+".png")
				}
				w.slots = map[string]int{slotBaseColor: 0, slotMetallicRoughness: 1, slotOcclusion: 1, slotNormal: 2, slotEmissive: 3}
				w.metallic = 1
				w.emissiveFactor = [3]float64{1, 1, 1}
				w.emissiveStrength = 2
				w.wrap = qgltf.WrapRepeat
				w.repeat = [2]float64{4, 2}
				w.tangents = true
				w.preview = PreviewPlane
				w.extensionsUsed = []string{ExtEmissiveStrength, ExtTextureTransform}
			},
		},
		{
			name: "tileable_no_repeat",
			m: func(tx *testTextures) Material {
				return Material{BaseColor: &Texture{PNG: tx.basePNG}, Tileable: true, Repeat: [2]float64{1, 1}, Preview: PreviewCube}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "basecolor", "tileable_no_repeat_basecolor.png", tx.basePNG)
				w.files = append(w.files, "tileable_no_repeat_basecolor.png")
				w.slots[slotBaseColor] = 0
				w.wrap = qgltf.WrapRepeat
				w.preview = PreviewCube
			},
		},
		{
			name: "clamp_repeat",
			m: func(tx *testTextures) Material {
				return Material{Normal: &Texture{PNG: tx.normalPNG}, Repeat: [2]float64{0.5, 3}}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "normal", "clamp_repeat_normal.png", tx.normalPNG)
				w.files = append(w.files, "clamp_repeat_normal.png")
				w.slots[slotNormal] = 0
				w.repeat = [2]float64{0.5, 3}
				w.tangents = true
				w.extensionsUsed = []string{ExtTextureTransform}
			},
		},
		{
			// Existing files are referenced in place (escaped URI, sub
			// folder), not copied; the .glb embeds them.
			name: "referenced_files",
			setup: func(t *testing.T, dir string, tx *testTextures) {
				writeFile(t, filepath.Join(dir, "textures", "stone albedo.png"), tx.basePNG)
				writeFile(t, filepath.Join(dir, "textures", "stone_orm.png"), tx.ormPNG)
			},
			m: func(tx *testTextures) Material {
				orm := &Texture{File: "textures/stone_orm.png"}
				return Material{
					BaseColor:         &Texture{File: "textures/stone albedo.png"},
					MetallicRoughness: orm,
					Occlusion:         &Texture{File: "textures/stone_orm.png"},
					Normal:            &Texture{PNG: tx.normalPNG},
					Tileable:          true,
				}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "basecolor", "textures/stone albedo.png", tx.basePNG)
				pngImg(w, "orm", "textures/stone_orm.png", tx.ormPNG)
				pngImg(w, "normal", "referenced_files_normal.png", tx.normalPNG)
				w.files = append(w.files, "referenced_files_normal.png")
				w.slots = map[string]int{slotBaseColor: 0, slotMetallicRoughness: 1, slotOcclusion: 1, slotNormal: 2}
				w.metallic = 1
				w.tangents = true
				w.wrap = qgltf.WrapRepeat
			},
		},
		{
			// Colour-space and aspect chunks are dropped, text chunks
			// (kiln's recipe) kept; a referenced file that has them is
			// copied clean instead of referenced.
			name: "png_chunks_cleaned",
			setup: func(t *testing.T, dir string, tx *testTextures) {
				writeFile(t, filepath.Join(dir, "painted.png"), withChunks(tx.emissivePNG, pngChunk("iCCP", []byte("p\x00\x00x"))))
			},
			m: func(tx *testTextures) Material {
				return Material{BaseColor: &Texture{PNG: tx.dirty}, Emissive: &Texture{File: "painted.png", Name: "painted_clean.png"}}
			},
			want: func(tx *testTextures, w *want) {
				pngImg(w, "basecolor", "png_chunks_cleaned_basecolor.png", tx.dirtyClean)
				pngImg(w, "emissive", "painted_clean.png", tx.emissivePNG)
				w.files = append(w.files, "png_chunks_cleaned_basecolor.png", "painted_clean.png")
				w.slots = map[string]int{slotBaseColor: 0, slotEmissive: 1}
				w.emissiveFactor = [3]float64{1, 1, 1}
			},
		},
		{
			name: "sphere_everything",
			m: func(tx *testTextures) Material {
				orm := &Texture{PNG: tx.ormPNG}
				return Material{
					BaseColor: &Texture{PNG: tx.basePNG}, MetallicRoughness: orm, Occlusion: orm,
					Normal: &Texture{PNG: tx.normalPNG}, Emissive: &Texture{PNG: tx.emissivePNG},
					EmissiveFactor: [3]float64{0.2, 0.4, 0.6}, EmissiveStrength: 3,
					AlphaMode: AlphaMask, AlphaCutoff: 0.7, DoubleSided: true,
					Tileable: true, Repeat: [2]float64{2, 1}, Preview: PreviewSphere,
				}
			},
			want: func(tx *testTextures, w *want) {
				for _, im := range []struct {
					slot string
					data []byte
				}{{"basecolor", tx.basePNG}, {"orm", tx.ormPNG}, {"normal", tx.normalPNG}, {"emissive", tx.emissivePNG}} {
					pngImg(w, im.slot, "sphere_everything_"+im.slot+".png", im.data)
					w.files = append(w.files, "sphere_everything_"+im.slot+".png")
				}
				w.slots = map[string]int{slotBaseColor: 0, slotMetallicRoughness: 1, slotOcclusion: 1, slotNormal: 2, slotEmissive: 3}
				w.metallic = 1
				w.emissiveFactor = [3]float64{0.2, 0.4, 0.6}
				w.emissiveStrength = 3
				w.alphaMode, w.alphaCutoff = qgltf.AlphaMask, 0.7
				w.doubleSided = true
				w.wrap = qgltf.WrapRepeat
				w.repeat = [2]float64{2, 1}
				w.tangents = true
				w.extensionsUsed = []string{ExtEmissiveStrength, ExtTextureTransform}
			},
		},
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestExport exports every case as .gltf and .glb, decodes both back with
// qmuntal/gltf and checks every field, then runs the Khronos glTF-Validator
// on all the files at once: no errors, warnings, infos or hints.
func TestExport(t *testing.T) {
	tx := newTestTextures(t)
	root := t.TempDir()
	var validate []string
	for _, tc := range exportCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, tc.name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, dir, tx)
			}
			w := defaults(tc.name)
			tc.want(tx, &w)
			m := tc.m(tx)
			src := os.DirFS(dir)

			files, err := EncodeGLTF(tc.name, m, src)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range files {
				names = append(names, f.Name)
				writeFile(t, filepath.Join(dir, f.Name), f.Data)
			}
			if !slices.Equal(names, w.files) {
				t.Errorf("EncodeGLTF files %q, want %q", names, w.files)
			}
			gltfPath := filepath.Join(dir, tc.name+".gltf")
			doc, err := qgltf.Open(gltfPath)
			if err != nil {
				t.Fatalf("decode %s: %v", gltfPath, err)
			}
			t.Run("gltf", func(t *testing.T) {
				checkDocument(t, doc, &w, false, func(i int) []byte {
					uri, err := url.PathUnescape(doc.Images[i].URI)
					if err != nil {
						t.Fatalf("image %d URI %q: %v", i, doc.Images[i].URI, err)
					}
					if uri != w.imageFiles[i] {
						t.Errorf("image %d URI %q (%s), want %q", i, doc.Images[i].URI, uri, w.imageFiles[i])
					}
					data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(uri)))
					if err != nil {
						t.Fatal(err)
					}
					return data
				})
				if got, want := doc.Buffers[0].URI, tc.name+".bin"; got != want {
					t.Errorf("buffer URI %q, want %q", got, want)
				}
			})

			glb, err := EncodeGLB(m, src)
			if err != nil {
				t.Fatal(err)
			}
			glbPath := filepath.Join(dir, tc.name+".glb")
			writeFile(t, glbPath, glb)
			var gdoc qgltf.Document
			if err := qgltf.NewDecoder(bytes.NewReader(glb)).Decode(&gdoc); err != nil {
				t.Fatalf("decode %s: %v", glbPath, err)
			}
			t.Run("glb", func(t *testing.T) {
				wg := w
				if w.name == tc.name {
					wg.name = "material"
				}
				checkDocument(t, &gdoc, &wg, true, func(i int) []byte {
					im := gdoc.Images[i]
					if im.URI != "" || im.BufferView == nil {
						t.Fatalf("image %d is not in a bufferView (uri %q)", i, im.URI)
					}
					bv := gdoc.BufferViews[*im.BufferView]
					if bv.Target != qgltf.TargetNone || bv.ByteStride != 0 {
						t.Errorf("image %d bufferView has target %v stride %d", i, bv.Target, bv.ByteStride)
					}
					data, err := modeler.ReadBufferView(&gdoc, bv)
					if err != nil {
						t.Fatal(err)
					}
					return data
				})
				if gdoc.Buffers[0].URI != "" {
					t.Errorf("GLB buffer has URI %q, want the BIN chunk", gdoc.Buffers[0].URI)
				}
			})
			validate = append(validate, gltfPath, glbPath)
		})
	}
	if t.Failed() {
		return
	}
	reports := runValidator(t, validate...)
	for _, f := range validate {
		checkClean(t, strings.TrimPrefix(f, root+string(filepath.Separator)), reports[f])
	}
}

// checkDocument checks every field of a decoded export against w; image
// returns the bytes of image i.
func checkDocument(t *testing.T, doc *qgltf.Document, w *want, glb bool, image func(i int) []byte) {
	t.Helper()
	if doc.Asset.Generator != Generator || doc.Asset.Version != "2.0" || doc.Asset.MinVersion != "" {
		t.Errorf("asset %+v, want generator %q version 2.0", doc.Asset, Generator)
	}
	if !slices.Equal(doc.ExtensionsUsed, w.extensionsUsed) {
		t.Errorf("extensionsUsed %q, want %q", doc.ExtensionsUsed, w.extensionsUsed)
	}
	if len(doc.ExtensionsRequired) != 0 {
		t.Errorf("extensionsRequired %q, want none", doc.ExtensionsRequired)
	}
	if len(doc.Extensions) != 0 || doc.Extras != nil {
		t.Errorf("document extensions %v extras %v, want none", doc.Extensions, doc.Extras)
	}

	// Scene graph: one scene, one node, one mesh.
	if doc.Scene == nil || *doc.Scene != 0 || len(doc.Scenes) != 1 || !slices.Equal(doc.Scenes[0].Nodes, []int{0}) {
		t.Fatalf("scene %v scenes %+v, want scene 0 holding node 0", doc.Scene, doc.Scenes)
	}
	if len(doc.Nodes) != 1 || doc.Nodes[0].Mesh == nil || *doc.Nodes[0].Mesh != 0 || doc.Nodes[0].Name != w.name {
		t.Fatalf("nodes %+v, want one node %q with mesh 0", doc.Nodes, w.name)
	}
	n := doc.Nodes[0]
	if n.MatrixOrDefault() != qgltf.DefaultMatrix || n.TranslationOrDefault() != [3]float64{} || n.RotationOrDefault() != qgltf.DefaultRotation || n.ScaleOrDefault() != qgltf.DefaultScale {
		t.Errorf("node has a transform: %+v", n)
	}
	if len(doc.Cameras)+len(doc.Animations)+len(doc.Skins) != 0 {
		t.Errorf("unexpected cameras, animations or skins")
	}

	// Images, textures, sampler.
	if len(doc.Images) != len(w.images) {
		t.Fatalf("%d images, want %d", len(doc.Images), len(w.images))
	}
	for i, im := range doc.Images {
		if im.Name != w.images[i] || im.MimeType != "image/png" {
			t.Errorf("image %d: name %q mime %q, want %q image/png", i, im.Name, im.MimeType, w.images[i])
		}
		if glb != (im.BufferView != nil) {
			t.Errorf("image %d: bufferView %v in a glb=%v file", i, im.BufferView, glb)
		}
		if got := image(i); !bytes.Equal(got, w.imageData[i]) {
			t.Errorf("image %d (%s): %d bytes differ from the %d expected", i, im.Name, len(got), len(w.imageData[i]))
		}
	}
	if len(doc.Textures) != len(w.images) {
		t.Fatalf("%d textures, want one per image (%d)", len(doc.Textures), len(w.images))
	}
	for i, tex := range doc.Textures {
		if tex.Sampler == nil || *tex.Sampler != 0 || tex.Source == nil || *tex.Source != i {
			t.Errorf("texture %d: %+v, want sampler 0 source %d", i, tex, i)
		}
	}
	if len(w.images) == 0 {
		if len(doc.Samplers) != 0 {
			t.Errorf("%d samplers without textures", len(doc.Samplers))
		}
	} else {
		want := qgltf.Sampler{MagFilter: qgltf.MagLinear, MinFilter: qgltf.MinLinearMipMapLinear, WrapS: w.wrap, WrapT: w.wrap}
		if len(doc.Samplers) != 1 {
			t.Errorf("%d samplers, want 1", len(doc.Samplers))
		} else if got := *doc.Samplers[0]; !reflect.DeepEqual(got, want) {
			t.Errorf("sampler %+v, want %+v", got, want)
		}
	}

	// Material.
	if len(doc.Materials) != 1 {
		t.Fatalf("%d materials, want 1", len(doc.Materials))
	}
	mat := doc.Materials[0]
	if mat.Name != w.name {
		t.Errorf("material name %q, want %q", mat.Name, w.name)
	}
	pbr := mat.PBRMetallicRoughness
	if pbr == nil {
		t.Fatal("no pbrMetallicRoughness")
	}
	if got := pbr.BaseColorFactorOrDefault(); got != w.baseColorFactor {
		t.Errorf("baseColorFactor %v, want %v", got, w.baseColorFactor)
	}
	if got := pbr.MetallicFactorOrDefault(); got != w.metallic {
		t.Errorf("metallicFactor %v, want %v", got, w.metallic)
	}
	if got := pbr.RoughnessFactorOrDefault(); got != w.roughness {
		t.Errorf("roughnessFactor %v, want %v", got, w.roughness)
	}
	if mat.EmissiveFactor != w.emissiveFactor {
		t.Errorf("emissiveFactor %v, want %v", mat.EmissiveFactor, w.emissiveFactor)
	}
	if mat.AlphaMode != w.alphaMode || mat.AlphaCutoffOrDefault() != w.alphaCutoff {
		t.Errorf("alpha %v cutoff %v, want %v %v", mat.AlphaMode, mat.AlphaCutoffOrDefault(), w.alphaMode, w.alphaCutoff)
	}
	if mat.DoubleSided != w.doubleSided {
		t.Errorf("doubleSided %v, want %v", mat.DoubleSided, w.doubleSided)
	}
	if w.emissiveStrength == 0 {
		if len(mat.Extensions) != 0 {
			t.Errorf("material extensions %v, want none", mat.Extensions)
		}
	} else {
		raw, ok := mat.Extensions[ExtEmissiveStrength].(json.RawMessage)
		var es EmissiveStrength
		if !ok || json.Unmarshal(raw, &es) != nil || es.EmissiveStrength != w.emissiveStrength || len(mat.Extensions) != 1 {
			t.Errorf("material extensions %v, want %s %v", mat.Extensions, ExtEmissiveStrength, w.emissiveStrength)
		}
	}

	// Texture references: index, texCoord 0, and the repeat transform.
	checkInfo := func(slot string, present bool, index, texCoord int, ext qgltf.Extensions) {
		t.Helper()
		want, ok := w.slots[slot]
		if present != ok {
			t.Errorf("%s texture present %v, want %v", slot, present, ok)
			return
		}
		if !ok {
			return
		}
		if index != want || texCoord != 0 {
			t.Errorf("%s texture index %d texCoord %d, want %d 0", slot, index, texCoord, want)
		}
		if w.repeat == [2]float64{} {
			if len(ext) != 0 {
				t.Errorf("%s texture extensions %v, want none", slot, ext)
			}
			return
		}
		tt, ok := ext[ExtTextureTransform].(*texturetransform.TextureTranform)
		if !ok || len(ext) != 1 {
			t.Errorf("%s texture extensions %v, want %s", slot, ext, ExtTextureTransform)
			return
		}
		if tt.Scale != w.repeat || tt.Offset != [2]float64{} || tt.Rotation != 0 || tt.TexCoord != nil {
			t.Errorf("%s texture transform %+v, want scale %v only", slot, tt, w.repeat)
		}
	}
	info := func(ti *qgltf.TextureInfo) (bool, int, int, qgltf.Extensions) {
		if ti == nil {
			return false, 0, 0, nil
		}
		return true, ti.Index, ti.TexCoord, ti.Extensions
	}
	p, i, tc, ext := info(pbr.BaseColorTexture)
	checkInfo(slotBaseColor, p, i, tc, ext)
	p, i, tc, ext = info(pbr.MetallicRoughnessTexture)
	checkInfo(slotMetallicRoughness, p, i, tc, ext)
	p, i, tc, ext = info(mat.EmissiveTexture)
	checkInfo(slotEmissive, p, i, tc, ext)
	if nt := mat.NormalTexture; nt != nil {
		if nt.Index == nil {
			t.Error("normalTexture without index")
		} else {
			checkInfo(slotNormal, true, *nt.Index, nt.TexCoord, nt.Extensions)
		}
		if nt.ScaleOrDefault() != w.normalScale {
			t.Errorf("normal scale %v, want %v", nt.ScaleOrDefault(), w.normalScale)
		}
	} else {
		checkInfo(slotNormal, false, 0, 0, nil)
	}
	if ot := mat.OcclusionTexture; ot != nil {
		if ot.Index == nil {
			t.Error("occlusionTexture without index")
		} else {
			checkInfo(slotOcclusion, true, *ot.Index, ot.TexCoord, ot.Extensions)
		}
		if ot.StrengthOrDefault() != w.occlusionStrength {
			t.Errorf("occlusion strength %v, want %v", ot.StrengthOrDefault(), w.occlusionStrength)
		}
	} else {
		checkInfo(slotOcclusion, false, 0, 0, nil)
	}

	checkMesh(t, doc, w)
}

// checkMesh reads the preview mesh back and compares it with the one the
// exporter builds, then checks its tangent space numerically.
func checkMesh(t *testing.T, doc *qgltf.Document, w *want) {
	t.Helper()
	if len(doc.Meshes) != 1 || len(doc.Meshes[0].Primitives) != 1 {
		t.Fatalf("meshes %+v, want one mesh with one primitive", doc.Meshes)
	}
	if doc.Meshes[0].Name != string(w.preview) {
		t.Errorf("mesh %q, want %q", doc.Meshes[0].Name, w.preview)
	}
	prim := doc.Meshes[0].Primitives[0]
	if prim.Mode != qgltf.PrimitiveTriangles || prim.Material == nil || *prim.Material != 0 || prim.Indices == nil || len(prim.Targets) != 0 {
		t.Fatalf("primitive %+v, want indexed triangles with material 0", prim)
	}
	wantAttrs := []string{qgltf.NORMAL, qgltf.POSITION}
	if w.tangents {
		wantAttrs = append(wantAttrs, qgltf.TANGENT)
	}
	if w.uvs {
		wantAttrs = append(wantAttrs, qgltf.TEXCOORD_0)
	}
	var attrs []string
	for k := range prim.Attributes {
		attrs = append(attrs, k)
	}
	slices.Sort(attrs)
	if !slices.Equal(attrs, wantAttrs) {
		t.Fatalf("attributes %q, want %q", attrs, wantAttrs)
	}
	ref, err := previewMesh(w.preview)
	if err != nil {
		t.Fatal(err)
	}
	accessor := func(i int, target qgltf.Target) *qgltf.Accessor {
		t.Helper()
		if i < 0 || i >= len(doc.Accessors) {
			t.Fatalf("accessor %d does not exist", i)
		}
		a := doc.Accessors[i]
		if a.BufferView == nil || doc.BufferViews[*a.BufferView].Target != target || a.Normalized || a.Sparse != nil {
			t.Fatalf("accessor %d: %+v, want a plain accessor on a bufferView with target %v", i, a, target)
		}
		return a
	}
	posAcc := accessor(prim.Attributes[qgltf.POSITION], qgltf.TargetArrayBuffer)
	pos, err := modeler.ReadPosition(doc, posAcc, nil)
	if err != nil {
		t.Fatal(err)
	}
	nrm, err := modeler.ReadNormal(doc, accessor(prim.Attributes[qgltf.NORMAL], qgltf.TargetArrayBuffer), nil)
	if err != nil {
		t.Fatal(err)
	}
	idxAcc := accessor(*prim.Indices, qgltf.TargetElementArrayBuffer)
	if idxAcc.ComponentType != qgltf.ComponentUshort {
		t.Errorf("indices are %v, want unsigned short", idxAcc.ComponentType)
	}
	idx, err := modeler.ReadIndices(doc, idxAcc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pos, ref.position) || !slices.Equal(nrm, ref.normal) || len(idx) != len(ref.indices) {
		t.Fatalf("mesh data differs from the %s preview mesh", w.preview)
	}
	for i, v := range ref.indices {
		if idx[i] != uint32(v) {
			t.Fatalf("index %d is %d, want %d", i, idx[i], v)
		}
	}
	// POSITION min and max must be the exact bounds of the data.
	mn, mx := vec64(pos[0]), vec64(pos[0])
	for _, p := range pos {
		for c := 0; c < 3; c++ {
			mn[c] = min(mn[c], float64(p[c]))
			mx[c] = max(mx[c], float64(p[c]))
		}
	}
	if !slices.Equal(posAcc.Min, mn[:]) || !slices.Equal(posAcc.Max, mx[:]) {
		t.Errorf("POSITION min %v max %v, want %v %v", posAcc.Min, posAcc.Max, mn, mx)
	}
	if w.uvs {
		uv, err := modeler.ReadTextureCoord(doc, accessor(prim.Attributes[qgltf.TEXCOORD_0], qgltf.TargetArrayBuffer), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(uv, ref.texcoord) {
			t.Errorf("TEXCOORD_0 differs from the preview mesh")
		}
		if w.tangents {
			tan, err := modeler.ReadTangent(doc, accessor(prim.Attributes[qgltf.TANGENT], qgltf.TargetArrayBuffer), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tan, ref.tangent) {
				t.Errorf("TANGENT differs from the preview mesh")
			}
			checkTangentSpace(t, pos, nrm, tan, uv, idx)
		}
	}
	// Every bufferView is used exactly once: by an accessor or an image.
	uses := make([]int, len(doc.BufferViews))
	for _, a := range doc.Accessors {
		uses[*a.BufferView]++
	}
	for _, im := range doc.Images {
		if im.BufferView != nil {
			uses[*im.BufferView]++
		}
	}
	for i, u := range uses {
		if u != 1 {
			t.Errorf("bufferView %d is used %d times", i, u)
		}
	}
	if len(doc.Buffers) != 1 {
		t.Errorf("%d buffers, want 1", len(doc.Buffers))
	}
}

func vec64(p [3]float32) [3]float64 { return [3]float64{float64(p[0]), float64(p[1]), float64(p[2])} }

// TestDeterministic encodes every case repeatedly: the bytes never change.
func TestDeterministic(t *testing.T) {
	tx := newTestTextures(t)
	for _, tc := range exportCases() {
		dir := t.TempDir()
		if tc.setup != nil {
			tc.setup(t, dir, tx)
		}
		src := os.DirFS(dir)
		first, err := EncodeGLTF(tc.name, tc.m(tx), src)
		if err != nil {
			t.Fatal(err)
		}
		firstGLB, err := EncodeGLB(tc.m(tx), src)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			again, err := EncodeGLTF(tc.name, tc.m(tx), src)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, first) {
				t.Errorf("%s: .gltf files differ between runs", tc.name)
			}
			glb, err := EncodeGLB(tc.m(tx), src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(glb, firstGLB) {
				t.Errorf("%s: .glb differs between runs", tc.name)
			}
		}
	}
}

// TestWrite writes through internal/atomicfile and reads back exactly what
// the encoders return, referencing an existing file in the folder.
func TestWrite(t *testing.T) {
	tx := newTestTextures(t)
	dir := filepath.Join(t.TempDir(), "out", "materials")
	writeFile(t, filepath.Join(dir, "floor_albedo.png"), tx.basePNG)
	orm := &Texture{PNG: tx.ormPNG}
	m := Material{
		BaseColor:         &Texture{File: "floor_albedo.png"},
		MetallicRoughness: orm, Occlusion: orm,
		Normal:   &Texture{Image: testImage(16, 2)},
		Tileable: true, Repeat: [2]float64{2, 2}, Preview: PreviewPlane,
	}
	paths, err := WriteGLTF(dir, "floor", m)
	if err != nil {
		t.Fatal(err)
	}
	files, err := EncodeGLTF("floor", m, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(files) {
		t.Fatalf("WriteGLTF wrote %q, want %d files", paths, len(files))
	}
	for i, f := range files {
		if paths[i] != filepath.Join(dir, f.Name) {
			t.Errorf("path %d is %s, want %s", i, paths[i], filepath.Join(dir, f.Name))
		}
		got, err := os.ReadFile(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs from EncodeGLTF's bytes", f.Name)
		}
		if st, err := os.Stat(paths[i]); err != nil || st.Mode().Perm() != filePerm {
			t.Errorf("%s: mode %v, %v; want %v", f.Name, st.Mode(), err, os.FileMode(filePerm))
		}
	}
	glbPath := filepath.Join(dir, "floor.glb")
	if err := WriteGLB(glbPath, m); err != nil {
		t.Fatal(err)
	}
	want, err := EncodeGLB(m, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(glbPath); err != nil || !bytes.Equal(got, want) {
		t.Errorf("floor.glb differs from EncodeGLB's bytes (%v)", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	wantNames := []string{"floor.bin", "floor.glb", "floor.gltf", "floor_albedo.png", "floor_normal.png", "floor_orm.png"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("folder holds %q, want %q (no temporary files left)", names, wantNames)
	}
	reports := runValidator(t, paths[0], glbPath)
	checkClean(t, "floor.gltf", reports[paths[0]])
	checkClean(t, "floor.glb", reports[glbPath])
}
