package manifests

import (
	"image/color"
	"sort"
	"strconv"
	"time"

	"github.com/kiln-dev/kiln/exporters/atlas"
)

// Kind is an asset kind: what the asset is and which generator makes it.
type Kind string

// The asset kinds of manifest schema v1.
const (
	// KindImage is a hand-made PNG or JPEG in the project, used as is.
	KindImage Kind = "image"
	// KindTexture is a generated albedo plus PBR maps derived from it.
	KindTexture Kind = "texture"
	// KindTileable is a generated seamless (wrap-around) image.
	KindTileable Kind = "tileable"
	// KindSpriteSheet is a generated animation: frames, a sheet, metadata.
	KindSpriteSheet Kind = "sprite-sheet"
	// KindConceptArt is a large generated canvas, possibly in variations.
	KindConceptArt Kind = "concept-art"
)

// Kinds returns every asset kind, in documentation order.
func Kinds() []Kind {
	return []Kind{KindImage, KindTexture, KindTileable, KindSpriteSheet, KindConceptArt}
}

// Generated reports whether assets of this kind come from a diffusion
// model (every kind except image).
func (k Kind) Generated() bool { return k != KindImage && k != "" }

// Block returns the YAML key of the kind's own block of options: image,
// texture, tileable, sprite or concept.
func (k Kind) Block() string {
	switch k {
	case KindSpriteSheet:
		return "sprite"
	case KindConceptArt:
		return "concept"
	}
	return string(k)
}

// Size is a width and height in pixels. The zero Size means "not given":
// generators then use the model's native size (1024 for SDXL, 512 for
// others).
type Size struct{ W, H int }

// IsZero reports whether the size was not given.
func (s Size) IsZero() bool { return s.W == 0 && s.H == 0 }

// String formats the size as "WxH".
func (s Size) String() string { return strconv.Itoa(s.W) + "x" + strconv.Itoa(s.H) }

// Tile says along which axes an image wraps around seamlessly.
type Tile string

// Tiling modes.
const (
	TileNone Tile = "none"
	TileXY   Tile = "xy"
	TileX    Tile = "x"
	TileY    Tile = "y"
)

// X reports whether the image wraps horizontally.
func (t Tile) X() bool { return t == TileXY || t == TileX }

// Y reports whether the image wraps vertically.
func (t Tile) Y() bool { return t == TileXY || t == TileY }

// Asset is one resolved entry of a manifest's assets: list, with every
// default applied (built-in < kiln.yaml defaults < file defaults < the
// asset's own fields). Exactly one of the kind blocks (Image, Texture,
// Tileable, Sprite, Concept) is non-nil, the one for Kind.
type Asset struct {
	// ID is unique across the project and path-like ("dungeon/floor").
	ID   string
	Kind Kind

	// Generation parameters; empty for kind image.
	Prompt         string
	NegativePrompt string
	// Model names a model of Config.Models or a built-in ("builtin:exemplar").
	// See Config.Model.
	Model string
	// Seed is the user's seed, or, when none was given anywhere, a
	// deterministic seed derived from the asset id (see DefaultSeed), so
	// builds are reproducible and two assets with one prompt still differ.
	Seed int64
	// Steps is 0 when not given: the model's default applies.
	Steps int
	// Guidance is nil when not given: the model's default applies (0 is a
	// valid guidance, so nil is the only "unset").
	Guidance *float64
	// Scheduler is "" when not given: the model's own scheduler applies.
	Scheduler string
	// SchedulerOptions are the options of a scheduler: mapping (zero
	// for a plain name: the model's scheduler_config.json applies).
	SchedulerOptions SchedulerOptions
	// Size is zero when not given: the model's native size applies.
	Size Size
	// Strength is the img2img strength used with From (default 0.75).
	Strength float64
	// From is the id of the asset whose image feeds this one (img2img).
	From string
	// Pick chooses the variation (concept-art) or frame (sprite-sheet) of
	// From; 0 otherwise.
	Pick int
	// Inpaint is nil unless the asset redraws part of From's image (its
	// From and Strength are then the inpaint block's).
	Inpaint *InpaintOptions
	// Exemplars are project-relative images for the builtin:exemplar model.
	Exemplars []string
	Tags      []string
	// LoRAs are the asset's LoRA styles (its own or its defaults'),
	// applied after its model's.
	LoRAs []LoRA

	Image    *ImageOptions
	Texture  *TextureOptions
	Tileable *TileableOptions
	Sprite   *SpriteOptions
	Concept  *ConceptOptions
	// Material is the asset's inline glTF material (kind texture with a
	// material: block), also listed in Project.Materials.
	Material *Material

	// File is the manifest the asset is written in; Pos is its entry.
	File string
	Pos  Pos
	// Where maps each field that was set (in the asset or in a defaults
	// block) to the position of its value: "prompt", "sprite.fps",
	// "sprite.pixel_art.colors". Fields left at their built-in default are
	// absent.
	Where map[string]Pos
}

// Has reports whether the field was set in the asset or a defaults block
// rather than left at its built-in default.
func (a *Asset) Has(field string) bool { _, ok := a.Where[field]; return ok }

// At returns the position of a field's value, or of the asset's entry when
// the field was not written, so later stages can point errors at a field.
func (a *Asset) At(field string) Pos {
	if p, ok := a.Where[field]; ok {
		return p
	}
	return a.Pos
}

// Files returns the project-relative files the asset reads (its source
// image, exemplars, palette, LoRAs), sorted, for cache keys and file watching.
// Whether they exist is checked when they are read, not here.
func (a *Asset) Files() []string {
	var f []string
	if a.Image != nil {
		f = append(f, a.Image.Source)
	}
	f = append(f, a.Exemplars...)
	if a.Inpaint != nil {
		f = append(f, a.Inpaint.Mask)
	}
	for _, l := range a.LoRAs {
		f = append(f, l.Path)
	}
	if a.Sprite != nil && a.Sprite.PixelArt != nil && a.Sprite.PixelArt.Palette != "" {
		f = append(f, a.Sprite.PixelArt.Palette)
	}
	sort.Strings(f)
	return f
}

// ImageOptions are the options of kind image.
type ImageOptions struct {
	// Source is the project-relative path of a PNG or JPEG file.
	Source string
}

// Texture map names, for TextureOptions.Maps and TexRef.Map.
const (
	MapAlbedo    = "albedo"
	MapNormal    = "normal"
	MapHeight    = "height"
	MapRoughness = "roughness"
	MapAO        = "ao"
	MapORM       = "orm"
	MapMetallic  = "metallic"
)

// TextureMaps returns every texture map name.
func TextureMaps() []string {
	return []string{MapAlbedo, MapNormal, MapHeight, MapRoughness, MapAO, MapORM, MapMetallic}
}

// TextureOptions are the options of kind texture (a PBR material set).
type TextureOptions struct {
	// Maps lists the maps written, in TextureMaps order.
	Maps []string
	// NormalStrength scales the Sobel gradient of the height map.
	NormalStrength float64
	// NormalY is "opengl" (+Y up, glTF and Godot) or "directx" (flipped).
	NormalY string
	// Roughness is the [min, max] range the derived roughness map spans.
	Roughness [2]float64
	// Metallic is a constant metallic value, used unless MetallicMap.
	Metallic float64
	// MetallicMap asks for a derived metallic map ("metallic: map").
	MetallicMap bool
	// Tile makes the albedo (and so every map) seamless.
	Tile Tile
}

// HasMap reports whether the texture writes the named map.
func (t *TextureOptions) HasMap(name string) bool { return contains(t.Maps, name) }

// TileableOptions are the options of kind tileable.
type TileableOptions struct {
	// Tile is xy (default), x or y.
	Tile Tile
	// RepairSeams inpaints a band across the wrap-around seams.
	RepairSeams bool
}

// SpriteOptions are the options of kind sprite-sheet.
type SpriteOptions struct {
	// Frames is the frame count; FramePrompts, when given, has one prompt
	// per frame (added to the asset's prompt).
	Frames       int
	FramePrompts []string
	// FrameSize is the output size of one frame; zero means the generated
	// size divided by PixelArt.Factor (or the generated size).
	FrameSize Size
	FPS       float64
	Loop      bool
	// Consistency is the img2img strength that ties frames to the
	// reference frame (0 = free, 1 = identical).
	Consistency float64
	// Background is "key" (generate on KeyColor, key it out) or "keep".
	Background   string
	KeyColor     color.RGBA
	KeyThreshold float64
	KeySoftness  float64
	// PixelArt is nil unless pixel-art mode is on.
	PixelArt *PixelArt
	// Columns of the grid sheet; 0 means automatic (about square).
	Columns int
}

// PixelArt are the options of a sprite sheet's pixel-art mode.
type PixelArt struct {
	// Factor is the nearest-neighbour downscale factor.
	Factor int
	// Colors quantises to this many colours (0: off). Palette, when set,
	// is a project-relative .gpl or .hex file to quantise to instead.
	Colors  int
	Palette string
}

// ConceptOptions are the options of kind concept-art.
type ConceptOptions struct {
	// Variations is the number of images, with seeds Seed, Seed+1, ...
	Variations int
	// Hires is nil unless a hires pass was asked for.
	Hires *Hires
}

// Hires is an upscale followed by img2img at Strength.
type Hires struct {
	Scale    float64
	Strength float64
	// Steps is 0 for "the asset's steps".
	Steps int
}

// Atlas is one resolved entry of a manifest's atlases: list.
type Atlas struct {
	ID string
	// Include is the list as written: asset ids and globs over ids
	// ("ui/*", "characters/**").
	Include []string
	// Assets are the ids Include resolves to, in include order, each once.
	Assets  []string
	MaxSize int
	// Size is "pot" (power-of-two pages) or "any".
	Size    string
	Square  bool
	Padding int
	Border  int
	Extrude int
	// Trim removes transparent borders; pixels with alpha <= TrimAlpha
	// count as transparent.
	Trim             bool
	TrimAlpha        int
	Rotation         bool
	Dedupe           bool
	PremultiplyAlpha bool
	// Formats are data formats to write; see AtlasFormats.
	Formats []string
	// Heuristic is a MaxRects placement rule or "best"; see AtlasHeuristics.
	Heuristic string
	// Scales are the scale factors to write, each a complete atlas (1:
	// the images as they are; 0.5: a half-size "@0.5x" variant).
	Scales []float64
	// Sprites holds per-sprite settings by asset id.
	Sprites map[string]AtlasSprite

	File  string
	Pos   Pos
	Where map[string]Pos
}

// AtlasSprite is an atlas's settings for one included asset (every frame
// of a sprite sheet).
type AtlasSprite struct {
	// Pivot is the origin as fractions of the sprite's size, or nil for
	// the centre.
	Pivot *[2]float64
	// Slice is the 9-slice borders in pixels (left, top, right, bottom),
	// or nil.
	Slice *[4]int
}

// At returns the position of a field's value, or of the entry.
func (a *Atlas) At(field string) Pos {
	if p, ok := a.Where[field]; ok {
		return p
	}
	return a.Pos
}

// Atlas data formats.
const (
	// FormatJSONHash is TexturePacker's JSON Hash (Phaser 3 load.atlas,
	// PixiJS Spritesheet).
	FormatJSONHash = "json-hash"
	// FormatJSONArray is TexturePacker's JSON Array.
	FormatJSONArray = "json-array"
	// FormatPhaserMulti is Phaser 3's multiatlas (textures: [...]).
	FormatPhaserMulti = "phaser-multiatlas"
	// FormatGodot writes Godot 4 SpriteFrames / AtlasTexture .tres files.
	FormatGodot = "godot"
	// FormatLibGDX is the libGDX / Spine .atlas text format.
	FormatLibGDX = "libgdx"
)

// AtlasFormats returns every atlas format name.
func AtlasFormats() []string {
	return []string{FormatJSONHash, FormatJSONArray, FormatPhaserMulti, FormatGodot, FormatLibGDX}
}

// AtlasHeuristics returns the names an atlas's heuristic: accepts:
// "best" (try all, keep the smallest page area), "global" (the global
// best-fit offline variant), and Jylänki's MaxRects rules bssf, blsf,
// baf, bl and cp, each also with a "-global" suffix. They are the
// packer's names (exporters/atlas.Heuristics), spelled as it spells them.
func AtlasHeuristics() []string {
	// The packer's own list, so every name that validates is one it knows.
	return atlas.Heuristics()
}

// TexRef names the image a material slot uses: an asset, and for texture
// assets which map of it.
type TexRef struct {
	Asset string
	// Map is a texture map name; "" for assets with a single image.
	Map string
	Pos Pos
}

// String formats the reference as "asset" or "asset#map".
func (r *TexRef) String() string {
	if r.Map == "" {
		return r.Asset
	}
	return r.Asset + "#" + r.Map
}

// Material is one resolved glTF material: an entry of materials: or the
// material: block of a texture asset (then ID and Owner are the asset's id).
type Material struct {
	ID string
	// Owner is the id of the texture asset that declares this material
	// inline; "" for entries of materials:.
	Owner string

	BaseColor       *TexRef
	BaseColorFactor [4]float64
	// MetallicRoughness uses G for roughness and B for metallic (glTF).
	MetallicRoughness *TexRef
	MetallicFactor    float64
	RoughnessFactor   float64
	Normal            *TexRef
	NormalScale       float64
	// Occlusion uses the R channel; it may be the same ORM image.
	Occlusion         *TexRef
	OcclusionStrength float64
	Emissive          *TexRef
	EmissiveFactor    [3]float64
	// EmissiveStrength above 1 needs KHR_materials_emissive_strength.
	EmissiveStrength float64
	// AlphaMode is OPAQUE, MASK or BLEND; AlphaCutoff applies to MASK.
	AlphaMode   string
	AlphaCutoff float64
	DoubleSided bool
	// Repeat is the UV repeat; other than [1, 1] it becomes
	// KHR_texture_transform.
	Repeat [2]float64
	// Formats are "gltf" (external PNGs) and/or "glb" (self-contained).
	Formats []string
	// Preview is the mesh written with the material: plane, cube, sphere.
	Preview string

	File  string
	Pos   Pos
	Where map[string]Pos
}

// At returns the position of a field's value, or of the entry.
func (m *Material) At(field string) Pos {
	if p, ok := m.Where[field]; ok {
		return p
	}
	return m.Pos
}

// Refs returns the material's texture references in slot order, skipping
// empty slots.
func (m *Material) Refs() []*TexRef {
	var out []*TexRef
	for _, r := range []*TexRef{m.BaseColor, m.MetallicRoughness, m.Normal, m.Occlusion, m.Emissive} {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// ModelKind is the architecture family of a model, when the configuration
// says it. "" means "read it from the model folder".
type ModelKind string

// Model kinds.
const (
	ModelSD15  ModelKind = "sd15"
	ModelSD2   ModelKind = "sd2"
	ModelSDXL  ModelKind = "sdxl"
	ModelLCM   ModelKind = "lcm"
	ModelTurbo ModelKind = "turbo"
)

// Exemplar is the name of the built-in training-free model.
const Exemplar = "builtin:exemplar"

// Model is one entry of kiln.yaml's models: map.
type Model struct {
	Name string
	// Path is the project-relative model folder; "" for built-in models.
	// For a model pulled from Hugging Face (HF set) it is path: when
	// given, else models/NAME, the folder kiln models pull fills.
	Path string
	// Builtin is the built-in model's name ("exemplar"), or "".
	Builtin string
	Kind    ModelKind
	// HF is where kiln models pull (and kiln build --pull) fetches the
	// folder from on the Hugging Face Hub; nil for a folder the user
	// provides, a catalogue model or a built-in.
	HF *HFSource
	// LoRAs are merged into the model's weights for every asset that
	// uses it, before the asset's own.
	LoRAs []LoRA
	Pos   Pos
}

// HFSource is the hf:, revision: and subfolder: fields of a models:
// entry: a folder of a Hugging Face model repository at a revision,
// spelt hf:REPO[/SUBFOLDER][@REVISION] on kiln's command line.
type HFSource struct {
	// Repo is the repository id, "ORG/REPO".
	Repo string
	// Subfolder is the slash-separated folder of the repository holding
	// the model (model_index.json and the component folders); "" for the
	// repository's top.
	Subfolder string
	// Revision is a branch, tag or commit; DefaultHFRevision when
	// kiln.yaml gives none.
	Revision string
	// Pos is where hf: is written.
	Pos Pos
}

// DefaultHFRevision is the revision of an hf: model without revision:,
// the Hub's default branch.
const DefaultHFRevision = "main"

// Ref spells the source as kiln models pull reads it:
// "hf:ORG/REPO[/SUBFOLDER][@REVISION]", the revision left out when it is
// DefaultHFRevision.
func (h *HFSource) Ref() string {
	s := "hf:" + h.Repo
	if h.Subfolder != "" {
		s += "/" + h.Subfolder
	}
	if h.Revision != "" && h.Revision != DefaultHFRevision {
		s += "@" + h.Revision
	}
	return s
}

// Ref returns how a manifest names the model's source: its path, or
// "builtin:NAME".
func (m *Model) Ref() string {
	if m.Builtin != "" {
		return "builtin:" + m.Builtin
	}
	return m.Path
}

// Runtime is kiln.yaml's runtime: block (ONNX Runtime settings).
type Runtime struct {
	// Library is the ONNX Runtime shared library; "" means search. Load
	// refuses a path inside the project (relative paths are relative to
	// the project root): a library inside the project is chosen with
	// --ort-lib or KILN_ORT_LIB, outside the project's files.
	Library string
	// Device is cpu, cuda, tensorrt, coreml, directml or openvino.
	Device   string
	DeviceID int
	// Fallback is "cpu" to run on the CPU when Device is unavailable, or "".
	Fallback string
	// Threads is the intra-op thread count; 0 lets ONNX Runtime choose.
	Threads int
	// Spinning turns ONNX Runtime's thread-pool spinning on or off; nil
	// (not written) means kiln's default, off (see models.RuntimeOptions).
	Spinning *bool
	// MemoryBudget caps the session pool in bytes; 0 means no cap.
	MemoryBudget int64
	// Batch is runtime.batch, the most assets whose diffusion steps share
	// one UNet call; 0 (not written) means kiln's default for the device
	// (see generators.BatchSize), 1 turns batching off.
	Batch int
	// ProviderOptions are runtime.provider_options: options of the cuda
	// and tensorrt execution providers by provider, over kiln's defaults.
	// Values are strings as ONNX Runtime takes them (booleans "0" or "1").
	// Nil when not written.
	ProviderOptions map[string]map[string]string
}

// Limits are the resource limits a typo cannot get past.
type Limits struct {
	MaxImageSize     int
	MaxSteps         int
	MaxFrames        int
	MaxVariations    int
	MaxManifestBytes int64
	MaxPromptChars   int
}

// DefaultLimits returns the built-in limits.
func DefaultLimits() Limits {
	return Limits{
		MaxImageSize:     8192,
		MaxSteps:         150,
		MaxFrames:        256,
		MaxVariations:    64,
		MaxManifestBytes: 4 << 20,
		MaxPromptChars:   4000,
	}
}

// Godot is kiln.yaml's godot: block, for the Godot exporters.
type Godot struct {
	// ProjectRoot is the folder holding project.godot, relative to the
	// kiln project ("." by default; ".." is allowed). res:// paths are
	// relative to it.
	ProjectRoot string
}

// Watch is kiln.yaml's watch: block.
type Watch struct {
	Debounce time.Duration
}

// Defaults is a defaults: block, of kiln.yaml or of one manifest. Its
// values are applied to assets, atlases and materials by Load; Where lists
// what it sets ("steps", "sprite.fps", "atlas.padding") and where.
type Defaults struct {
	Where map[string]Pos
	obj   *object
}

// Config is a project's kiln.yaml.
type Config struct {
	Version int
	// Output is the output folder, project-relative ("out"), cleaned.
	// Load refuses the project folder itself, a folder in or above a
	// version-control folder, and one that holds or lies inside a
	// manifest, a file an asset reads, a model folder or the cache.
	Output string
	// Cache is the cache folder, project-relative (".kiln/cache"), under
	// the same rules as Output.
	Cache string
	// Manifests are globs of manifest files ("**/*.kiln.yaml").
	Manifests []string
	Models    map[string]*Model
	Runtime   Runtime
	Defaults  *Defaults
	Limits    Limits
	Godot     Godot
	Watch     Watch

	// RemoteCache is the remote_cache: block; nil when kiln.yaml has none.
	RemoteCache *RemoteCache

	Where map[string]Pos

	// refNames are the names under models:, including entries that failed
	// to decode, so references to them are not reported twice.
	refNames map[string]*Model
	// badFields are the folder fields (output, cache) whose value was
	// refused, so checks that would use their default skip them.
	badFields map[string]bool
}

// Model returns the model a manifest's model: field names: a configured
// name, or "builtin:NAME" for a built-in model whether configured or not.
// It returns nil for unknown names.
func (c *Config) Model(name string) *Model {
	if m, ok := c.Models[name]; ok {
		return m
	}
	if b, ok := cutPrefix(name, "builtin:"); ok && contains(builtinModels(), b) {
		return &Model{Name: name, Builtin: b}
	}
	return nil
}

// builtinModels are the names after "builtin:" that kiln knows.
func builtinModels() []string { return []string{"exemplar"} }

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// Project is a loaded and validated kiln project.
type Project struct {
	// Root is the absolute project folder ("" when loaded from an fs.FS).
	Root   string
	Config *Config
	// Files are the manifest files, project-relative, sorted.
	Files     []string
	Assets    []*Asset
	Atlases   []*Atlas
	Materials []*Material
	// Warnings are problems that did not stop the load, sorted like an
	// ErrorList and formatted the same way ("file: message (hint)"):
	// files the manifest globs match that kiln skipped because they are
	// symlinks or not regular files. A build can go on, but what was
	// skipped is missing from it, so kiln build --check fails on any.
	Warnings ErrorList

	assets    map[string]*Asset
	atlases   map[string]*Atlas
	materials map[string]*Material
}

// SourceFiles returns every project file the assets read, sorted and
// without duplicates: what a watcher must watch besides the manifests.
func (p *Project) SourceFiles() []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range p.Assets {
		for _, f := range a.Files() {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Asset returns the asset with the id, or nil.
func (p *Project) Asset(id string) *Asset { return p.assets[id] }

// Atlas returns the atlas with the id, or nil.
func (p *Project) Atlas(id string) *Atlas { return p.atlases[id] }

// Material returns the material with the id, or nil.
func (p *Project) Material(id string) *Material { return p.materials[id] }

// SchedulerOptions are the settings a scheduler: mapping overrides in the
// model's scheduler_config.json. Only options the named scheduler takes
// are ever set.
type SchedulerOptions struct {
	// Karras, when not nil, turns Karras noise levels on or off
	// (use_karras_sigmas).
	Karras *bool
	// Spacing is leading, trailing or linspace (timestep_spacing); ""
	// keeps the model's.
	Spacing string
	// Eta is DDIM's noise scale (0: deterministic).
	Eta float64
}
