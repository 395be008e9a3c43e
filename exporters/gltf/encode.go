package gltf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"io/fs"
	"net/url"
	"sort"
	"strings"

	qgltf "github.com/qmuntal/gltf"
	"github.com/qmuntal/gltf/ext/texturetransform"
	"github.com/qmuntal/gltf/modeler"
)

// Generator is written into every file's asset.generator.
const Generator = "kiln"

// Extension names this package writes.
const (
	// ExtTextureTransform carries Material.Repeat.
	ExtTextureTransform = texturetransform.ExtensionName
	// ExtEmissiveStrength carries Material.EmissiveStrength above 1.
	// github.com/qmuntal/gltf v0.28.0 has no type for it, so this package
	// writes its JSON itself.
	ExtEmissiveStrength = "KHR_materials_emissive_strength"
)

// EmissiveStrength is the JSON of the KHR_materials_emissive_strength
// material extension.
type EmissiveStrength struct {
	EmissiveStrength float64 `json:"emissiveStrength"`
}

// File is one file of an exported .gltf: a name relative to the folder the
// .gltf goes to, and its bytes.
type File struct {
	Name string
	Data []byte
}

// EncodeGLTF returns the files of name.gltf: the JSON document first, then
// name.bin (the preview mesh), then one PNG per distinct texture image given
// as PNG bytes or an Image, all to be written into one folder. Textures given
// as a File are referenced by relative URI and not returned; src, rooted at
// that folder, is where they are read from to check them (src may be nil
// when no texture is a File). The output bytes depend only on the arguments.
func EncodeGLTF(name string, m Material, src fs.FS) ([]File, error) {
	files, err := encodeGLTF(name, &m, src)
	if err != nil {
		return nil, fmt.Errorf("export glTF %q: %w", name, err)
	}
	return files, nil
}

// EncodeGLB returns a self-contained .glb: the document, the preview mesh and
// every texture image in one binary buffer. Textures given as a File are
// read from src (which may be nil when none is). The output bytes depend
// only on the arguments.
func EncodeGLB(m Material, src fs.FS) ([]byte, error) {
	data, err := encodeGLB(&m, src)
	if err != nil {
		name := m.Name
		if name == "" {
			name = "material"
		}
		return nil, fmt.Errorf("export GLB %q: %w", name, err)
	}
	return data, nil
}

func encodeGLTF(name string, m *Material, src fs.FS) ([]File, error) {
	if err := checkFileName(name); err != nil {
		return nil, fmt.Errorf("file name: %w", err)
	}
	b, err := newBuilder(m, name, src)
	if err != nil {
		return nil, err
	}
	binName := name + ".bin"
	b.doc.Buffers = []*qgltf.Buffer{{URI: escapePath(binName)}}
	b.geometry()

	files := []File{{Name: name + ".gltf"}, {Name: binName}}
	taken := map[string]string{ // lower-cased name → what took it
		strings.ToLower(name + ".gltf"): "the glTF document",
		strings.ToLower(binName):        "the mesh buffer",
	}
	for _, im := range b.images {
		if im.file != "" {
			taken[strings.ToLower(im.file)] = "referenced file " + im.file
		}
	}
	for _, im := range b.images {
		uri := im.file
		if uri == "" {
			fname := im.name
			if fname == "" {
				fname = name + "_" + im.slotName() + ".png"
			}
			if what, ok := taken[strings.ToLower(fname)]; ok {
				return nil, fmt.Errorf("%s texture: file name %q is already used by %s: give the texture another name", im.slots[0], fname, what)
			}
			taken[strings.ToLower(fname)] = im.slots[0] + " texture"
			files = append(files, File{Name: fname, Data: im.data})
			uri = fname
		}
		b.doc.Images = append(b.doc.Images, &qgltf.Image{
			Name:     im.slotName(),
			URI:      escapePath(uri),
			MimeType: "image/png",
		})
	}
	b.finish()

	files[1].Data = b.doc.Buffers[0].Data
	var out bytes.Buffer
	enc := qgltf.NewEncoder(&out)
	enc.AsBinary = false
	enc.SetJSONIndent("", "  ")
	if err := enc.Encode(b.doc); err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	files[0].Data = out.Bytes()
	return files, nil
}

func encodeGLB(m *Material, src fs.FS) ([]byte, error) {
	b, err := newBuilder(m, "material", src)
	if err != nil {
		return nil, err
	}
	b.doc.Buffers = []*qgltf.Buffer{{}}
	b.geometry()
	buf := b.doc.Buffers[0]
	for _, im := range b.images {
		// Start each image on a 4-byte boundary, like the accessors.
		for len(buf.Data)%4 != 0 {
			buf.Data = append(buf.Data, 0)
		}
		b.doc.BufferViews = append(b.doc.BufferViews, &qgltf.BufferView{
			Buffer:     0,
			ByteOffset: len(buf.Data),
			ByteLength: len(im.data),
		})
		buf.Data = append(buf.Data, im.data...)
		b.doc.Images = append(b.doc.Images, &qgltf.Image{
			Name:       im.slotName(),
			MimeType:   "image/png",
			BufferView: qgltf.Index(len(b.doc.BufferViews) - 1),
		})
	}
	buf.ByteLength = len(buf.Data)
	b.finish()

	var out bytes.Buffer
	enc := qgltf.NewEncoder(&out)
	enc.AsBinary = true
	if err := enc.Encode(b.doc); err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	return out.Bytes(), nil
}

// slot names, in the order textures are listed in the file.
const (
	slotBaseColor         = "basecolor"
	slotMetallicRoughness = "metallicroughness"
	slotNormal            = "normal"
	slotOcclusion         = "occlusion"
	slotEmissive          = "emissive"
)

// srcImage is one distinct texture image, shared by every slot that names
// the same File or carries the same bytes.
type srcImage struct {
	key   string   // identity for sharing
	slots []string // slots using it, in slot order
	file  string   // the File reference, or ""
	name  string   // Texture.Name of the first slot, or ""
	data  []byte   // PNG bytes
}

// slotName names the image after its use: "orm" for a shared
// metallic-roughness and occlusion image, else its first slot.
func (im *srcImage) slotName() string {
	if len(im.slots) > 1 && im.slots[0] == slotMetallicRoughness && im.slots[1] == slotOcclusion {
		return "orm"
	}
	return im.slots[0]
}

// builder assembles one document; images are added by the caller between
// geometry and finish because .gltf and .glb store them differently.
type builder struct {
	m      *Material
	r      *resolved
	mesh   *mesh
	doc    *qgltf.Document
	images []*srcImage
	slot   map[string]int // slot → image index
}

func newBuilder(m *Material, defaultName string, src fs.FS) (*builder, error) {
	r, err := m.resolve(defaultName)
	if err != nil {
		return nil, err
	}
	msh, err := previewMesh(r.preview)
	if err != nil {
		return nil, err
	}
	b := &builder{
		m:    m,
		r:    r,
		mesh: msh,
		slot: map[string]int{},
		doc: &qgltf.Document{
			Asset: qgltf.Asset{Generator: Generator, Version: "2.0"},
		},
	}
	slots := []struct {
		name string
		tex  *Texture
	}{
		{slotBaseColor, m.BaseColor},
		{slotMetallicRoughness, m.MetallicRoughness},
		{slotNormal, m.Normal},
		{slotOcclusion, m.Occlusion},
		{slotEmissive, m.Emissive},
	}
	var errs []error
	byKey := map[string]int{}
	for _, s := range slots {
		if s.tex == nil {
			continue
		}
		im, err := loadTexture(s.tex, src)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s texture: %w", s.name, err))
			continue
		}
		if i, ok := byKey[im.key]; ok {
			b.images[i].slots = append(b.images[i].slots, s.name)
			b.slot[s.name] = i
			continue
		}
		im.slots = []string{s.name}
		byKey[im.key] = len(b.images)
		b.slot[s.name] = len(b.images)
		b.images = append(b.images, im)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b, nil
}

// loadTexture reads a texture's source and checks it is a complete PNG.
func loadTexture(t *Texture, src fs.FS) (*srcImage, error) {
	n := 0
	if t.PNG != nil {
		n++
	}
	if t.Image != nil {
		n++
	}
	if t.File != "" {
		n++
	}
	if n != 1 {
		return nil, fmt.Errorf("has %d sources: set exactly one of PNG, Image and File", n)
	}
	if t.Name != "" {
		if err := checkFileName(t.Name); err != nil {
			return nil, fmt.Errorf("name: %w", err)
		}
		if !strings.HasSuffix(strings.ToLower(t.Name), ".png") {
			return nil, fmt.Errorf("name %q does not end in .png: PNG files need the .png extension", t.Name)
		}
	}
	switch {
	case t.PNG != nil:
		data, err := checkPNG(t.PNG, true)
		if err != nil {
			return nil, err
		}
		return &srcImage{key: contentKey(data), name: t.Name, data: data}, nil
	case t.Image != nil:
		var buf bytes.Buffer
		if err := (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(&buf, t.Image); err != nil {
			return nil, fmt.Errorf("encode PNG: %w", err)
		}
		data := buf.Bytes()
		return &srcImage{key: contentKey(data), name: t.Name, data: data}, nil
	}
	if err := checkRelPath(t.File); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("file %q cannot be read: the exporter was given no folder to read it from", t.File)
	}
	raw, err := fs.ReadFile(src, t.File)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.File, err)
	}
	data, err := checkPNG(raw, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.File, err)
	}
	if !bytes.Equal(data, raw) {
		// The file carries chunks glTF forbids: ship a clean copy
		// instead of referencing it, as for a PNG source.
		return &srcImage{key: contentKey(data), name: t.Name, data: data}, nil
	}
	return &srcImage{key: "file:" + t.File, file: t.File, data: data}, nil
}

// contentKey identifies image bytes for sharing.
func contentKey(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkFileName accepts a plain file name that stays in its folder on every
// operating system.
func checkFileName(name string) error {
	switch {
	case name == "":
		return errors.New("the name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a file name", name)
	case strings.ContainsAny(name, `/\:`):
		return fmt.Errorf("%q contains a path separator or colon: give a plain file name", name)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%q contains a control character", name)
		}
	}
	return nil
}

// checkRelPath accepts a slash-separated path that stays inside the folder
// it is relative to.
func checkRelPath(p string) error {
	if strings.ContainsAny(p, `\:`) || !fs.ValidPath(p) || p == "." {
		return fmt.Errorf("file %q is not a clean relative path inside the output folder: use forward slashes, no \"..\", no leading \"/\" and no drive letter", p)
	}
	for _, elem := range strings.Split(p, "/") {
		if err := checkFileName(elem); err != nil {
			return fmt.Errorf("file %q: %w", p, err)
		}
	}
	return nil
}

// escapePath turns a slash-separated relative path into a relative URI.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// geometry writes the preview mesh's accessors into buffer 0. TEXCOORD_0 is
// written only when there is a texture and TANGENT only when there is a
// normal map: nothing else reads them, and the validator reports unused
// attributes.
func (b *builder) geometry() {
	doc, msh := b.doc, b.mesh
	attrs := qgltf.PrimitiveAttributes{
		qgltf.POSITION: modeler.WritePosition(doc, msh.position),
		qgltf.NORMAL:   modeler.WriteNormal(doc, msh.normal),
	}
	if len(b.images) > 0 {
		attrs[qgltf.TEXCOORD_0] = modeler.WriteTextureCoord(doc, msh.texcoord)
	}
	if _, ok := b.slot[slotNormal]; ok {
		attrs[qgltf.TANGENT] = modeler.WriteTangent(doc, msh.tangent)
	}
	indices := modeler.WriteIndices(doc, msh.indices)
	doc.Meshes = []*qgltf.Mesh{{
		Name: string(b.r.preview),
		Primitives: []*qgltf.Primitive{{
			Attributes: attrs,
			Indices:    qgltf.Index(indices),
			Material:   qgltf.Index(0),
			Mode:       qgltf.PrimitiveTriangles,
		}},
	}}
}

// finish adds the sampler, textures, material, node and scene.
func (b *builder) finish() {
	doc, r := b.doc, b.r
	if len(b.images) > 0 {
		wrap := qgltf.WrapClampToEdge
		if b.m.Tileable {
			wrap = qgltf.WrapRepeat
		}
		doc.Samplers = []*qgltf.Sampler{{
			MagFilter: qgltf.MagLinear,
			MinFilter: qgltf.MinLinearMipMapLinear,
			WrapS:     wrap,
			WrapT:     wrap,
		}}
		for i := range b.images {
			doc.Textures = append(doc.Textures, &qgltf.Texture{
				Sampler: qgltf.Index(0),
				Source:  qgltf.Index(i),
			})
		}
	}
	used := map[string]bool{}
	transform := func() qgltf.Extensions {
		if !r.transform {
			return nil
		}
		used[ExtTextureTransform] = true
		return qgltf.Extensions{ExtTextureTransform: &texturetransform.TextureTranform{Scale: r.repeat}}
	}
	info := func(slot string) *qgltf.TextureInfo {
		i, ok := b.slot[slot]
		if !ok {
			return nil
		}
		return &qgltf.TextureInfo{Index: i, Extensions: transform()}
	}

	bcf := r.baseColorFactor
	mat := &qgltf.Material{
		Name: r.name,
		PBRMetallicRoughness: &qgltf.PBRMetallicRoughness{
			BaseColorFactor:          &bcf,
			BaseColorTexture:         info(slotBaseColor),
			MetallicFactor:           qgltf.Float(r.metallic),
			RoughnessFactor:          qgltf.Float(r.roughness),
			MetallicRoughnessTexture: info(slotMetallicRoughness),
		},
		EmissiveTexture: info(slotEmissive),
		EmissiveFactor:  r.emissiveFactor,
		DoubleSided:     b.m.DoubleSided,
	}
	if i, ok := b.slot[slotNormal]; ok {
		mat.NormalTexture = &qgltf.NormalTexture{Index: qgltf.Index(i), Scale: qgltf.Float(r.normalScale), Extensions: transform()}
	}
	if i, ok := b.slot[slotOcclusion]; ok {
		mat.OcclusionTexture = &qgltf.OcclusionTexture{Index: qgltf.Index(i), Strength: qgltf.Float(r.occlusion), Extensions: transform()}
	}
	switch r.alphaMode {
	case AlphaMask:
		mat.AlphaMode = qgltf.AlphaMask
		mat.AlphaCutoff = qgltf.Float(r.alphaCutoff)
	case AlphaBlend:
		mat.AlphaMode = qgltf.AlphaBlend
	default:
		mat.AlphaMode = qgltf.AlphaOpaque
	}
	if r.emissiveStrength > 1 {
		mat.Extensions = qgltf.Extensions{ExtEmissiveStrength: &EmissiveStrength{EmissiveStrength: r.emissiveStrength}}
		used[ExtEmissiveStrength] = true
	}
	doc.Materials = []*qgltf.Material{mat}

	doc.Nodes = []*qgltf.Node{{Name: r.name, Mesh: qgltf.Index(0)}}
	doc.Scenes = []*qgltf.Scene{{Name: r.name, Nodes: []int{0}}}
	doc.Scene = qgltf.Index(0)
	for ext := range used {
		doc.ExtensionsUsed = append(doc.ExtensionsUsed, ext)
	}
	sort.Strings(doc.ExtensionsUsed)
}
