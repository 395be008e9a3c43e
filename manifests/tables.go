package manifests

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// specs holds the spec of every part of the format. It is built per use
// (it is cheap) so the package keeps no global state.
type specs struct {
	asset, atlas, material, inlineMaterial *spec
	defaults, manifest, config             *spec
}

// Schema patterns, written in the subset of regular expressions that both
// ECMA-262 (JSON Schema) and Go's RE2 understand.
const (
	idPattern       = `^[a-z0-9_-]+(?:/[a-z0-9_-]+)*$`
	reservedPattern = `(?:^|/)(?:con|prn|aux|nul|com[1-9]|lpt[1-9])(?:/|$)`
	pathChar        = `[^/\\:\x00-\x1f\x7f]`
	pathCharNoDot   = `[^/\\:\x00-\x1f\x7f.]`
	pathSeg         = `(?:` + pathCharNoDot + pathChar + `*|\.|\.` + pathCharNoDot + pathChar + `*|\.\.` + pathChar + `+)`
	pathPattern     = `^` + pathSeg + `(?:/` + pathSeg + `)*$`
	upPattern       = `^` + pathChar + `+(?:/` + pathChar + `+)*/?$`
	imagePattern    = `^(?:` + pathSeg + `/)*` + pathChar + `*\.(?:[Pp][Nn][Gg]|[Jj][Pp][Ee]?[Gg])$`
	palettePattern  = `^(?:` + pathSeg + `/)*` + pathChar + `*\.(?:[Gg][Pp][Ll]|[Hh][Ee][Xx])$`
	colorPattern    = `^#[0-9a-fA-F]{6}$`
	durationPattern = `^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|ms|s|m|h))+$`
	bytesPattern    = `^[0-9]+(?:\.[0-9]+)? ?(?:B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`
	sizePattern     = `^[0-9]+x[0-9]+$`
	modelPattern    = `^[A-Za-z0-9][A-Za-z0-9_.-]*$`
)

var generatedKinds = []Kind{KindTexture, KindTileable, KindSpriteSheet, KindConceptArt}

func idSpec(doc string) *spec {
	return str(doc).nonempty(idHint).pat(idPattern).x("maxLength", MaxIDLength).
		x("not", map[string]any{"pattern": reservedPattern}).
		with(func(d *decoder, p string, v *value) (any, bool) {
			if msg, hint := CheckID(v.v.(string)); msg != "" {
				d.add(v.pos, p, msg, hint)
				return nil, false
			}
			return v.v, true
		})
}

// pathSpec is a project-relative file path, optionally with one of exts.
func pathSpec(doc string, kind pathKind, example string, exts ...string) *spec {
	s := str(doc).with(func(d *decoder, p string, v *value) (any, bool) {
		clean, msg, hint := checkPath(v.v.(string), kind, example)
		if msg != "" {
			d.add(v.pos, p, msg, hint)
			return nil, false
		}
		if len(exts) > 0 {
			low := strings.ToLower(clean)
			ok := false
			for _, e := range exts {
				ok = ok || strings.HasSuffix(low, e)
			}
			if !ok {
				d.add(v.pos, p, fmt.Sprintf("expected a %s file, got %s", orList(exts), quote(v.v.(string))), "")
				return nil, false
			}
		}
		return clean, true
	})
	switch {
	case kind == pathUp:
		s.pat(upPattern)
	case contains(exts, ".png"):
		s.pat(imagePattern)
	case contains(exts, ".gpl"):
		s.pat(palettePattern)
	default:
		s.pat(pathPattern)
	}
	return s
}

func orList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func imagePath(doc string) *spec {
	return pathSpec(doc, pathInside, "art/hero.png", ".png", ".jpg", ".jpeg")
}

func promptSpec(doc string) *spec {
	return str(doc).loose().lim("max_prompt_chars", func(l *Limits) int { return l.MaxPromptChars })
}

func modelRefSpec() *spec {
	return str("Model to generate with: a name under models: in kiln.yaml, or builtin:exemplar.").nonempty("").
		with(func(d *decoder, p string, v *value) (any, bool) {
			name := v.v.(string)
			if b, ok := cutPrefix(name, "builtin:"); ok {
				if !contains(builtinModels(), b) {
					hint := didYouMean(b, builtinModels())
					if hint != "" {
						hint = fmt.Sprintf("did you mean \"builtin:%s\"?", suggest(b, builtinModels()))
					} else {
						hint = "built-in models: " + Exemplar
					}
					d.add(v.pos, p, fmt.Sprintf("unknown built-in model %s", quote(name)), hint)
					return nil, false
				}
				return name, true
			}
			if _, ok := d.models[name]; ok {
				return name, true
			}
			names := sortedKeys(d.models)
			hint := didYouMean(name, names)
			switch {
			case hint != "":
			case len(names) == 0:
				hint = "add it under models: in kiln.yaml, or use " + Exemplar
			default:
				hint = "models in kiln.yaml: " + joinNames(names)
			}
			d.add(v.pos, p, fmt.Sprintf("unknown model %s", quote(name)), hint)
			return nil, false
		})
}

func sizeSpec(doc string, generated bool) *spec {
	// The parser checks sides in sizePost (with better messages); the
	// schema states the same rules for editors.
	side := func() *spec {
		s := integer("").x("minimum", 1)
		if generated {
			s.x("minimum", 8).x("multipleOf", 8)
		}
		return s
	}
	s := anyOf(doc,
		side(),
		list("", side()).items(2, 2).describe("a [width, height] list"),
		str("").pat(sizePattern),
	).describe(`a size like 512, [512, 768] or "512x768"`).with(sizePost(generated))
	return s
}

// frames is the decoded form of sprite.frames.
type frames struct {
	n       int
	prompts []string
}

// metallic is the decoded form of texture.metallic.
type metallic struct {
	v     float64
	isMap bool
}

// trim is the decoded form of atlas.trim.
type trim struct {
	on    bool
	alpha int
}

func texRefSpec(doc string) *spec {
	return anyOf(doc,
		idSpec("An asset id."),
		obj("An asset and one of its maps.",
			fld("asset", idSpec("The asset id.")).req(""),
			fld("map", enum("Which map of a texture asset.", TextureMaps()...)),
		),
	).describe(`an asset id or {asset: ID, map: NAME}`).named("texture_ref").
		with(func(d *decoder, p string, v *value) (any, bool) {
			switch x := v.v.(type) {
			case string:
				return &TexRef{Asset: x, Pos: v.pos}, true
			case *object:
				r := &TexRef{Pos: v.pos}
				a, ok := x.get("asset")
				if !ok {
					return nil, false
				}
				r.Asset = a.v.(string)
				if m, ok := x.get("map"); ok {
					r.Map = m.v.(string)
				}
				return r, true
			}
			return nil, false
		})
}

func unit(doc string) *spec { return number(doc).rng(0, 1) }

func newSpecs() *specs {
	s := &specs{}
	maxSteps := func(l *Limits) int { return l.MaxSteps }
	maxFrames := func(l *Limits) int { return l.MaxFrames }
	maxImage := func(l *Limits) int { return l.MaxImageSize }

	texture := obj("Options of kind texture: a generated albedo and PBR maps derived from it.",
		fld("maps", list("Maps to write.", enum("", TextureMaps()...)).nonempty("list at least one map, e.g. [albedo, normal]").uniq().
			dflt([]string{MapAlbedo, MapNormal, MapHeight, MapRoughness, MapAO, MapORM})),
		fld("normal_strength", number("Strength of the normal map (Sobel on height).").atLeast(0).dflt(1.0)),
		fld("normal_y", enum("Green channel convention of the normal map: opengl (+Y, glTF and Godot) or directx.", "opengl", "directx").dflt("opengl")),
		fld("roughness", list("[min, max] range of the derived roughness map.", unit("")).items(2, 2).describe("a [min, max] list").dflt([]float64{0.3, 0.9}).
			with(func(d *decoder, p string, v *value) (any, bool) {
				r := v.v.([]*value)
				lo, hi := r[0].v.(float64), r[1].v.(float64)
				if lo > hi {
					d.add(v.pos, p, fmt.Sprintf("min %s is more than max %s", fmtNum(lo), fmtNum(hi)), "write [min, max]")
					return nil, false
				}
				return [2]float64{lo, hi}, true
			})),
		fld("metallic", anyOf("Metallic: a constant from 0 to 1, or \"map\" to derive a metallic map.",
			unit(""), enum("", "map")).describe(`a number from 0 to 1 or "map"`).dflt(0.0).
			with(func(d *decoder, p string, v *value) (any, bool) {
				if f, ok := v.v.(float64); ok {
					return metallic{v: f}, true
				}
				return metallic{isMap: true}, true
			})),
		fld("tile", enum("Make the texture seamless along these axes.", "xy", "x", "y", "none").dflt("none")),
	)
	tileable := obj("Options of kind tileable: a seamless image.",
		fld("tile", enum("Axes along which the image wraps around.", "xy", "x", "y").dflt("xy")),
		fld("repair_seams", boolean("Inpaint a band across the wrap-around seams after generating.").dflt(false)),
	)
	pixelArt := obj("Pixel-art mode: nearest-neighbour downscale and optional palette quantisation.",
		fld("factor", integer("Downscale factor.").rng(1, 64).dflt(4)),
		fld("colors", integer("Quantise to this many colours.").rng(2, 256)),
		fld("palette", pathSpec("Quantise to this palette file (GIMP .gpl or .hex), project-relative.", pathInside, "palettes/pico8.hex", ".gpl", ".hex")),
	).checked(func(d *decoder, p string, o *object) {
		if o.has("colors") && o.has("palette") {
			d.add(o.keyAt("palette"), join(p, "palette"), "colors and palette cannot both be set", "a palette fixes the colours; remove colors")
		}
	})
	sprite := obj("Options of kind sprite-sheet: an animation.",
		fld("frames", anyOf("Frame count, or a list of per-frame prompts (added to the asset's prompt).",
			integer("").atLeast(1).lim("max_frames", maxFrames),
			list("", promptSpec("").nonempty("")).nonempty("").lim("max_frames", maxFrames),
		).describe("a frame count or a list of per-frame prompts").
			with(func(d *decoder, p string, v *value) (any, bool) {
				if n, ok := v.v.(int64); ok {
					return frames{n: int(n)}, true
				}
				var f frames
				for _, it := range v.v.([]*value) {
					f.prompts = append(f.prompts, it.v.(string))
				}
				f.n = len(f.prompts)
				return f, true
			})),
		fld("frame_size", sizeSpec("Output size of one frame (default: the generated size ÷ pixel_art.factor).", false)),
		fld("fps", number("Playback speed in frames per second.").above(0).rng(0, 240).dflt(12.0)),
		fld("loop", boolean("Whether the animation loops.").dflt(true)),
		fld("consistency", unit("How strongly frames stick to the reference frame (img2img strength, 0..1).").dflt(0.5)),
		fld("background", enum("key: generate on key_color and key it out to transparency; keep: leave the background.", "key", "keep").dflt("key")),
		fld("key_color", str("Background key colour, \"#rrggbb\" (quote it: # starts a YAML comment).").pat(colorPattern).dflt("#ff00ff").describe(`a colour like "#ff00ff"`).
			onNull(`quote the colour, e.g. "#ff00ff": in YAML an unquoted # starts a comment`).with(colorPost)),
		fld("key_threshold", unit("Colour distance below which a pixel is background (0..1).").dflt(0.15)),
		fld("key_softness", unit("Width of the soft alpha edge above the threshold (0..1).").dflt(0.1)),
		fld("pixel_art", pixelArt),
		fld("columns", integer("Columns of the grid sheet (default: about square).").atLeast(1)),
	)
	hires := obj("A hires pass: upscale, then img2img.",
		fld("scale", number("Upscale factor.").above(1).rng(1, 4).dflt(2.0)),
		fld("strength", unit("img2img strength of the pass.").dflt(0.35)),
		fld("steps", integer("Steps of the pass (default: the asset's steps).").atLeast(1).lim("max_steps", maxSteps)),
	)
	concept := obj("Options of kind concept-art: large canvases.",
		fld("variations", integer("Number of images, with seeds seed, seed+1, ...").atLeast(1).
			lim("max_variations", func(l *Limits) int { return l.MaxVariations }).dflt(1)),
		fld("hires", hires),
	)
	image := obj("Options of kind image: a hand-made file.",
		fld("source", imagePath("PNG or JPEG file, relative to the project root.")).req("add source: art/NAME.png"),
	)

	materialFields := []*field{
		fld("id", idSpec("Unique, path-like id, e.g. \"props/crate\".")).req(idHint),
		fld("base_color", texRefSpec("Base colour texture (sRGB): an asset id, or {asset, map}; a texture asset gives its albedo.")),
		fld("base_color_factor", list("RGBA multiplier of the base colour.", unit("")).items(4, 4).describe("an [r, g, b, a] list").dflt([]float64{1, 1, 1, 1})),
		fld("metallic_roughness", texRefSpec("Metallic-roughness texture (G = roughness, B = metallic); a texture asset gives its orm map.")),
		fld("orm", texRefSpec("Packed occlusion-roughness-metallic texture: sets metallic_roughness and occlusion at once.")),
		fld("metallic_factor", unit("Metallic multiplier (default 1 with a metallic-roughness texture, else 0).")),
		fld("roughness_factor", unit("Roughness multiplier.").dflt(1.0)),
		fld("normal", texRefSpec("Normal map; a texture asset gives its normal map.")),
		fld("normal_scale", number("Scale of the normal map.").dflt(1.0)),
		fld("occlusion", texRefSpec("Ambient occlusion (R channel); a texture asset gives its orm map, or ao.")),
		fld("occlusion_strength", unit("Strength of the occlusion.").dflt(1.0)),
		fld("emissive", texRefSpec("Emissive texture (sRGB).")),
		fld("emissive_factor", list("RGB multiplier of the emission (default [1, 1, 1] with an emissive texture, else [0, 0, 0]).", unit("")).items(3, 3).describe("an [r, g, b] list")),
		fld("emissive_strength", number("Emission strength; above 1 uses KHR_materials_emissive_strength.").atLeast(0).dflt(1.0)),
		fld("alpha_mode", enum("glTF alpha mode.", "OPAQUE", "MASK", "BLEND").dflt("OPAQUE")),
		fld("alpha_cutoff", unit("Alpha cutoff of alpha_mode MASK.").dflt(0.5)),
		fld("double_sided", boolean("Render both faces.").dflt(false)),
		fld("repeat", anyOf("UV repeat: a number, or [u, v] (KHR_texture_transform).",
			number("").above(0).rng(0, 1e6), list("", number("").above(0).rng(0, 1e6)).items(2, 2).describe("a [u, v] list"),
		).describe("a number or a [u, v] list").dflt([]float64{1, 1}).
			with(func(d *decoder, p string, v *value) (any, bool) {
				if f, ok := v.v.(float64); ok {
					return [2]float64{f, f}, true
				}
				r := v.v.([]*value)
				return [2]float64{r[0].v.(float64), r[1].v.(float64)}, true
			})),
		fld("formats", list("Files to write: gltf (with external PNGs) and/or glb (self-contained).", enum("", "gltf", "glb")).nonempty("").uniq().dflt([]string{"gltf"})),
		fld("preview", enum("Preview mesh in the file.", "plane", "cube", "sphere").dflt("plane")),
	}
	materialCheck := func(d *decoder, p string, o *object) {
		for _, f := range []string{"metallic_roughness", "occlusion"} {
			if o.has("orm") && o.has(f) {
				d.add(o.keyAt(f), join(p, f), "cannot be set together with orm", "orm sets metallic_roughness and occlusion; remove one")
			}
		}
	}
	s.material = obj("A glTF 2.0 material built from assets.", materialFields...).checked(materialCheck).named("material")
	s.inlineMaterial = s.material.without("A glTF material for this texture; its maps fill the slots unless set here.", "id")
	s.inlineMaterial.check = materialCheck

	s.atlas = obj("A texture atlas packed from assets.",
		fld("id", idSpec("Unique, path-like id, e.g. \"ui/main\".")).req(idHint),
		fld("include", list("Asset ids and globs over ids (\"ui/*\", \"characters/**\").", str("").nonempty("").
			with(func(d *decoder, p string, v *value) (any, bool) {
				x := v.v.(string)
				if globMeta(x) {
					if msg, hint := checkGlob(x); msg != "" {
						d.add(v.pos, p, msg, hint)
						return nil, false
					}
					return x, true
				}
				if msg, hint := CheckID(x); msg != "" {
					d.add(v.pos, p, msg, hint)
					return nil, false
				}
				return x, true
			})).nonempty("list asset ids or globs, e.g. [\"ui/*\"]").uniq()).req("add include: [ASSET_ID, ...]"),
		fld("max_size", integer("Largest page side in pixels.").atLeast(1).lim("max_image_size", maxImage).dflt(2048)),
		fld("size", enum("pot: power-of-two pages; any: tight pages.", "pot", "any").dflt("pot")),
		fld("square", boolean("Square pages.").dflt(false)),
		fld("padding", integer("Pixels between sprites.").rng(0, 256).dflt(2)),
		fld("border", integer("Pixels between sprites and the page edge.").rng(0, 256).dflt(0)),
		fld("extrude", integer("Pixels of edge repetition around each sprite.").rng(0, 64).dflt(0)),
		fld("trim", anyOf("Trim transparent borders: true, false, or the alpha (0..254) at or below which a pixel counts as transparent.",
			boolean(""), integer("").rng(0, 254)).describe("true, false or an alpha threshold from 0 to 254").dflt(false).
			with(func(d *decoder, p string, v *value) (any, bool) {
				if b, ok := v.v.(bool); ok {
					return trim{on: b}, true
				}
				return trim{on: true, alpha: int(v.v.(int64))}, true
			})),
		fld("rotation", boolean("Allow 90° rotation of sprites.").dflt(false)),
		fld("dedupe", boolean("Identical images share one rectangle.").dflt(true)),
		fld("premultiply_alpha", boolean("Premultiply colour by alpha.").dflt(false)),
		fld("formats", list("Data files to write.", enum("", AtlasFormats()...)).nonempty("").uniq().dflt([]string{FormatJSONHash})),
		fld("heuristic", enum("MaxRects placement rule, or best (try all, keep the smallest).", AtlasHeuristics()...).dflt("best")),
		fld("scales", list("Scale factors to write, each a complete atlas: 1 the images as they are, 0.5 a half-size variant "+
			"named ID@0.5x with meta.scale 0.5.", number("").above(0).rng(0, 1)).nonempty("").uniq().dflt([]float64{1})),
		fld("sprites", func() *spec {
			m := mapOf("Per-sprite settings by included asset id (a sprite sheet's apply to each of its frames).", obj("",
				fld("pivot", list("Origin as fractions of the sprite's size: [0, 0] top-left, [1, 1] bottom-right (default: the centre).", unit("")).
					items(2, 2).describe("an [x, y] list of fractions from 0 to 1")),
				fld("slice", list("9-slice borders in pixels: [left, top, right, bottom]; the sprite is then never trimmed.", integer("").atLeast(0).lim("max_image_size", maxImage)).
					items(4, 4).describe("a [left, top, right, bottom] list of pixel counts")),
			))
			m.keyCheck = func(d *decoder, p, key string, pos Pos) bool {
				if msg, hint := CheckID(key); msg != "" {
					d.add(pos, p, msg, hint)
					return false
				}
				return true
			}
			return m
		}()),
	)

	for n, sp := range map[string]*spec{"texture": texture, "tileable": tileable, "pixel_art": pixelArt, "sprite": sprite, "hires": hires, "concept": concept, "image": image} {
		sp.named(n)
	}
	gen := generatedKinds
	s.asset = obj("An asset: one picture or set of pictures kiln builds.",
		fld("id", idSpec("Unique, path-like id, e.g. \"dungeon/floor\"; outputs are named after it.")).req(idHint),
		fld("kind", enum("What the asset is.", kindNames()...)).req("add kind: image, texture, tileable, sprite-sheet or concept-art"),
		fld("prompt", promptSpec("What to generate.")).only(gen...),
		fld("negative_prompt", promptSpec("What to avoid.")).only(gen...),
		fld("model", modelRefSpec()).only(gen...),
		fld("seed", integer("Random seed (default: derived from the id).").atLeast(0)).only(gen...),
		fld("steps", integer("Diffusion steps (default: the model's).").atLeast(1).lim("max_steps", maxSteps)).only(gen...),
		fld("guidance", number("Classifier-free guidance scale (default: the model's).").atLeast(0)).only(gen...),
		fld("scheduler", schedulerSpec()).only(gen...),
		fld("size", sizeSpec("Generated size, multiples of 8 (default: 1024 for SDXL models, 512 otherwise).", true)).only(gen...),
		fld("strength", unit("img2img strength when from: is set.").dflt(0.75)).only(gen...),
		fld("from", idSpec("Asset whose image feeds this one (img2img).")).only(gen...),
		fld("pick", integer("Variation (concept-art) or frame (sprite-sheet) of from: to use.").atLeast(0)).only(gen...),
		fld("exemplars", list("Reference images for the builtin:exemplar model, project-relative.", imagePath("")).nonempty("").uniq()).only(gen...),
		fld("tags", list("Free labels.", str("").loose().nonempty("")).uniq()),
		fld("loras", loraListSpec()).only(gen...),
		fld("image", image).only(KindImage),
		fld("texture", texture).only(KindTexture),
		fld("tileable", tileable).only(KindTileable),
		fld("sprite", sprite).only(KindSpriteSheet),
		fld("concept", concept).only(KindConceptArt),
		fld("material", s.inlineMaterial).only(KindTexture),
		fld("inpaint", inpaintSpec()).only(KindTexture, KindTileable, KindConceptArt),
	)
	s.asset.check = func(d *decoder, p string, o *object) { assetKindCheck(s.asset, d, p, o) }
	s.asset.extra = assetSchemaRules(s.asset)
	s.asset.aliases = map[string]string{"sprite_sheet": "sprite", "sprite-sheet": "sprite", "spritesheet": "sprite",
		"concept_art": "concept", "concept-art": "concept", "source": "image", "negative": "negative_prompt"}

	s.defaults = obj("Defaults for the assets, atlases and materials (kiln.yaml: the project; a manifest: that file). "+
		"Precedence: built-in < kiln.yaml < manifest file < the entry itself. A field applies only where it means something "+
		"(generation fields skip image assets; a kind's block applies to that kind; exemplars only to the builtin:exemplar model).",
		fld("model", modelRefSpec()),
		fld("negative_prompt", promptSpec("What to avoid.")),
		fld("seed", s.asset.field("seed").spec),
		fld("steps", s.asset.field("steps").spec),
		fld("guidance", s.asset.field("guidance").spec),
		fld("scheduler", s.asset.field("scheduler").spec),
		fld("size", s.asset.field("size").spec),
		fld("strength", s.asset.field("strength").spec),
		fld("exemplars", s.asset.field("exemplars").spec),
		fld("tags", s.asset.field("tags").spec),
		fld("loras", s.asset.field("loras").spec),
		fld("texture", texture),
		fld("tileable", tileable),
		fld("sprite", sprite),
		fld("concept", concept),
		fld("atlas", s.atlas.without("Defaults for atlases.", "id", "include", "sprites")),
		fld("material", s.material.without("Defaults for materials.", "id", "base_color", "metallic_roughness", "orm", "normal", "occlusion", "emissive")),
	)

	s.manifest = obj("A kiln manifest (schema version 1).",
		fld("version", integer("Manifest schema version.").x("const", 1)).req(`add "version: 1" at the top`),
		fld("defaults", s.defaults),
		fld("assets", list("The assets.", s.asset)),
		fld("atlases", list("Texture atlases packed from assets.", s.atlas)),
		fld("materials", list("glTF materials built from assets.", s.material)),
	)
	s.manifest.extensions = true

	modelObject := obj("",
		fld("path", str("Model folder (project-relative) or builtin:exemplar; with hf:, the folder the model is "+
			"pulled into (default models/NAME).").nonempty("")),
		fld("kind", enum("Architecture, when it cannot be read from the folder.", "sd15", "sd2", "sdxl", "lcm", "turbo")),
		fld("hf", str("Hugging Face model repository ORG/REPO to pull the folder from with kiln models pull "+
			"(an ONNX diffusers / optimum export; only its ONNX files are downloaded). "+
			"kiln.lock pins the commit and every file's size and SHA-256.").pat(hfRepoPattern).with(hfRepoPost)),
		fld("revision", str("Branch, tag or commit of the hf: repository (default main); kiln.lock pins the commit "+
			"it pointed to until kiln models pull --update.").nonempty("write a branch, tag or commit, or leave revision: out for main").with(hfRevisionPost).dflt(DefaultHFRevision)),
		fld("subfolder", str("Folder of the hf: repository holding the model (model_index.json), e.g. onnx; "+
			"default: the repository's top.").nonempty("name a folder of the repository, or leave subfolder: out for its top").pat(pathPattern).with(hfSubfolderPost)),
		fld("loras", loraListSpec()),
	).checked(modelObjectCheck)
	modelObject.extra = modelSchemaRules
	modelEntry := anyOf("A model: a project-relative model folder, builtin:exemplar, or {path, kind}, "+
		"or {hf, revision, subfolder, kind} for a folder kiln models pull fetches from the Hugging Face Hub "+
		"(pinned in kiln.lock).",
		str("").nonempty(""),
		modelObject,
	).describe(`a model folder, "builtin:exemplar", {path, kind} or {hf, revision, subfolder, kind}`).with(modelEntryPost)

	globs := anyOf("Globs of manifest files, project-relative. Dot-folders and dot-files are skipped; symlinks and special files are "+
		"skipped with a warning; a manifest inside the output or cache folder is an error.",
		str("").with(globPost),
		list("", str("").with(globPost)).nonempty(""),
	).describe("a glob or a list of globs").dflt([]string{"**/*.kiln.yaml"})

	s.config = obj("kiln.yaml: a kiln project's configuration (version 1).",
		fld("version", integer("Configuration schema version.").x("const", 1)).req(`add "version: 1" at the top`),
		fld("output", folderSpec("Output folder, project-relative: kiln writes its outputs there and kiln clean deletes them. "+
			"Not the project folder itself, not in or above a .git, .hg or .svn folder, and apart from the cache, the manifests, "+
			"the files assets read and the model folders (neither holding nor inside any of them).", "output", "out").dflt("out")),
		fld("cache", folderSpec("Cache folder, project-relative: kiln writes into it and kiln clean --cache deletes what kiln keeps there. "+
			"Not the project folder itself, not in or above a .git, .hg or .svn folder, and apart from the output, the manifests, "+
			"the files assets read and the model folders (neither holding nor inside any of them).", "cache", ".kiln/cache").dflt(".kiln/cache")),
		fld("manifests", globs),
		fld("models", func() *spec {
			m := mapOf("Named models.", modelEntry)
			m.keyPattern = modelPattern
			m.keyCheck = func(d *decoder, p, key string, pos Pos) bool {
				if !validModelName(key) {
					d.add(pos, p, fmt.Sprintf("model name %s is not valid", quote(key)), "use letters, digits, \"_\", \".\" and \"-\", e.g. sd15")
					return false
				}
				return true
			}
			return m
		}()),
		fld("runtime", obj("ONNX Runtime settings.",
			fld("library", librarySpec()),
			fld("device", enum("Execution provider.", "cpu", "cuda", "tensorrt", "coreml", "directml", "openvino").dflt("cpu")),
			fld("device_id", integer("Device index.").rng(0, 1024).dflt(0)),
			fld("fallback", enum("cpu: run on the CPU when the device is unavailable; none: fail.", "cpu", "none").dflt("none")),
			fld("threads", integer("Intra-op threads (0: ONNX Runtime decides).").rng(0, 1024).dflt(0)),
			fld("spinning", boolean("Let ONNX Runtime's thread pools spin (busy-wait) between operators: less latency, "+
				"but the waiting threads burn cores other stages could use. Off unless set: on 2 cores it lost beside CPU stages.").dflt(false)),
			fld("batch", integer("Most assets whose diffusion steps share one UNet call (same model, size and conditioning), "+
				"which also lets that many accelerator stages run at once; 1 turns batching off. "+
				"Default: 4 on cuda, tensorrt and directml, off on other devices.").rng(1, 256)),
			fld("memory_budget", anyOf("Memory for cached sessions, e.g. \"4GiB\" (0: no cap).",
				integer("").atLeast(0), str("").pat(bytesPattern)).describe(`a byte count or a size like "4GiB"`).
				with(byteSizePost(0, 1<<50))),
			fld("provider_options", obj("Options of the cuda and tensorrt execution providers, over kiln's defaults "+
				"(ONNX Runtime 1.24's names; values as ONNX Runtime takes them, booleans as true/false or 0/1).",
				fld("cuda", providerOptionsSpec("cuda")),
				fld("tensorrt", providerOptionsSpec("tensorrt")),
			)),
		)),
		fld("defaults", &spec{kind: kRaw, doc: s.defaults.doc, elem: s.defaults}),
		fld("limits", obj("Resource limits.",
			fld("max_image_size", integer("Largest image side.").rng(64, 65536).dflt(8192)),
			fld("max_steps", integer("Most diffusion steps.").rng(1, 10000).dflt(150)),
			fld("max_frames", integer("Most sprite frames.").rng(1, 100000).dflt(256)),
			fld("max_variations", integer("Most concept-art variations.").rng(1, 10000).dflt(64)),
			fld("max_manifest_bytes", anyOf("Largest manifest file, e.g. \"4MiB\".",
				integer("").atLeast(1024), str("").pat(bytesPattern)).describe(`a byte count or a size like "4MiB"`).
				dflt("4MiB").with(byteSizePost(1024, 1<<30))),
			fld("max_prompt_chars", integer("Longest prompt in characters.").rng(1, 1_000_000).dflt(4000)),
		)),
		fld("godot", obj("Godot exporter settings.",
			fld("project_root", pathSpec("Folder of project.godot, relative to this project (may use \"..\").", pathUp, "../game").dflt(".")),
		)),
		fld("watch", obj("kiln watch settings.",
			fld("debounce", str("Quiet time before a rebuild, e.g. \"100ms\".").pat(durationPattern).dflt("100ms").with(durationPost)),
		)),
		fld("remote_cache", remoteCacheSpec()),
	)
	s.config.extensions = true
	return s
}

func kindNames() []string {
	var n []string
	for _, k := range Kinds() {
		n = append(n, string(k))
	}
	return n
}

func validModelName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i, r := range s {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || (i > 0 && (r == '_' || r == '.' || r == '-'))
		if !ok {
			return false
		}
	}
	return true
}

func globPost(d *decoder, p string, v *value) (any, bool) {
	g := v.v.(string)
	if msg, hint := checkGlob(g); msg != "" {
		d.add(v.pos, p, msg, hint)
		return nil, false
	}
	return g, true
}

func modelEntryPost(d *decoder, p string, v *value) (any, bool) {
	m := &Model{Pos: v.pos}
	var src string
	srcPos, srcPath := v.pos, p
	switch x := v.v.(type) {
	case string:
		src = x
	case *object:
		if k, ok := x.get("kind"); ok {
			m.Kind = ModelKind(k.v.(string))
		}
		if lv, ok := x.get("loras"); ok {
			m.LoRAs = loraList(lv.v)
		}
		if x.has("hf") {
			// Bad hf:, revision: or subfolder: values were reported
			// and dropped; the entry is unusable without them.
			hv, ok := x.get("hf")
			if !ok || refused(x, "revision") || refused(x, "subfolder") || refused(x, "path") {
				return nil, false
			}
			m.HF = &HFSource{Repo: hv.v.(string), Revision: DefaultHFRevision, Pos: hv.pos}
			if rv, ok := x.get("revision"); ok {
				m.HF.Revision = rv.v.(string)
			}
			if sv, ok := x.get("subfolder"); ok {
				m.HF.Subfolder = sv.v.(string)
			}
			pv, ok := x.get("path")
			if !ok {
				// bindConfig sets models/NAME: the name is the map's key.
				return m, true
			}
			src, srcPos, srcPath = pv.v.(string), pv.pos, join(p, "path")
			break
		}
		pv, ok := x.get("path")
		if !ok || refused(x, "revision") || refused(x, "subfolder") {
			return nil, false
		}
		src, srcPos, srcPath = pv.v.(string), pv.pos, join(p, "path")
	}
	if b, ok := cutPrefix(src, "builtin:"); ok {
		if m.HF != nil {
			d.add(srcPos, srcPath, fmt.Sprintf("path %s cannot be combined with hf:", quote(src)),
				"a built-in model has no files to pull; remove hf: (and revision:, subfolder:), or give the folder to pull into, e.g. path: models/NAME")
			return nil, false
		}
		if !contains(builtinModels(), b) {
			d.add(srcPos, srcPath, fmt.Sprintf("unknown built-in model %s", quote(src)), "built-in models: "+Exemplar)
			return nil, false
		}
		m.Builtin = b
		return m, true
	}
	clean, msg, hint := checkPath(src, pathInside, "models/sd15")
	if msg != "" {
		d.add(srcPos, srcPath, msg, hint+"; kiln reads models from inside the project")
		return nil, false
	}
	m.Path = clean
	return m, true
}

// assetKindCheck refuses fields that do not apply to the asset's kind and
// drops them so nothing downstream sees them.
func assetKindCheck(asset *spec, d *decoder, p string, o *object) {
	kv, ok := o.get("kind")
	if !ok {
		return
	}
	kind := Kind(kv.v.(string))
	spec := asset.fields
	own := func() []string {
		var own []string
		for _, f := range spec {
			if f.kinds == nil || containsKind(f.kinds, kind) {
				own = append(own, f.name)
			}
		}
		return own
	}
	for _, f := range spec {
		if !o.has(f.name) || f.kinds == nil || containsKind(f.kinds, kind) {
			continue
		}
		fp := join(p, f.name)
		switch {
		case f.name == Kind(f.kinds[0]).Block() && len(f.kinds) == 1 && f.name != "material":
			d.add(o.keyAt(f.name), fp, fmt.Sprintf("block %q is for kind %s, but this asset is kind %s", f.name, f.kinds[0], kind),
				fmt.Sprintf("remove it, or set kind: %s", f.kinds[0]))
		case kind == KindImage:
			d.add(o.keyAt(f.name), fp, fmt.Sprintf("field %q does not apply to kind image", f.name),
				"image assets are hand-made files; their fields are "+joinNames(own()))
		default:
			var ks []string
			for _, k := range f.kinds {
				ks = append(ks, string(k))
			}
			d.add(o.keyAt(f.name), fp, fmt.Sprintf("field %q does not apply to kind %s", f.name, kind),
				"it applies to kind "+orList(ks))
		}
		o.drop(f.name)
	}
	if kind == KindImage && !o.has("image") {
		d.add(o.pos, p, "kind image needs an image block", "add image: {source: art/NAME.png}")
	}
}

func containsKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// providerOption is one execution provider option kiln.yaml may name.
type providerOption struct {
	name string
	kind string // "bool", "uint", "int", "size", "string" or "enum"
	doc  string
	enum []string
	// refuse says why the option cannot be set and what to do instead.
	refuse string
}

// providerOptionTable lists the options of the cuda and tensorrt
// providers, as ONNX Runtime 1.24 names them. The models package, which
// passes them on, keeps the same table (models.ProviderOptionKeys); a
// test keeps the two equal.
func providerOptionTable(provider string) []providerOption {
	pointer := "it takes a memory address, which only a program embedding ONNX Runtime can give"
	device := "set runtime.device_id (or --device-id) instead"
	switch provider {
	case "cuda":
		return []providerOption{
			{name: "gpu_mem_limit", kind: "size", doc: "Most device memory a session's arena may take, e.g. \"6GiB\" (default: runtime.memory_budget, else no limit)."},
			{name: "arena_extend_strategy", kind: "enum", enum: []string{"kNextPowerOfTwo", "kSameAsRequested"}, doc: "How the arena grows (default kSameAsRequested)."},
			{name: "cudnn_conv_algo_search", kind: "enum", enum: []string{"EXHAUSTIVE", "HEURISTIC", "DEFAULT"}, doc: "How cuDNN picks convolution algorithms (default EXHAUSTIVE: benchmarked once per shape)."},
			{name: "do_copy_in_default_stream", kind: "bool", doc: "Copy on the compute stream (default 1)."},
			{name: "cudnn_conv_use_max_workspace", kind: "bool", doc: "Let cuDNN use as much workspace as its fastest algorithms want (default 1)."},
			{name: "enable_cuda_graph", kind: "bool", doc: "Capture CUDA graphs (default 0: they need fixed shapes and device buffers, which kiln does not use)."},
			{name: "cudnn_conv1d_pad_to_nc1d", kind: "bool"},
			{name: "tunable_op_enable", kind: "bool"},
			{name: "tunable_op_tuning_enable", kind: "bool"},
			{name: "tunable_op_max_tuning_duration_ms", kind: "uint"},
			{name: "enable_skip_layer_norm_strict_mode", kind: "bool"},
			{name: "prefer_nhwc", kind: "bool"},
			{name: "use_ep_level_unified_stream", kind: "bool"},
			{name: "use_tf32", kind: "bool"},
			{name: "fuse_conv_bias", kind: "bool"},
			{name: "sdpa_kernel", kind: "uint"},
			{name: "device_id", refuse: device},
			{name: "has_user_compute_stream", refuse: pointer},
			{name: "user_compute_stream", refuse: pointer},
			{name: "gpu_external_alloc", refuse: pointer},
			{name: "gpu_external_free", refuse: pointer},
			{name: "gpu_external_empty_cache", refuse: pointer},
		}
	case "tensorrt":
		profile := "kiln sets the optimisation profiles of each graph from the image sizes the project uses"
		context := "kiln keeps compiled engines in its engine cache and does not write or load EP context models"
		return []providerOption{
			{name: "trt_max_workspace_size", kind: "size", doc: "Most memory TensorRT may use while building, e.g. \"4GiB\" (default: ONNX Runtime's)."},
			{name: "trt_max_partition_iterations", kind: "uint"},
			{name: "trt_min_subgraph_size", kind: "uint"},
			{name: "trt_fp16_enable", kind: "bool", doc: "Let TensorRT run layers in float16 (default 1)."},
			{name: "trt_bf16_enable", kind: "bool"},
			{name: "trt_int8_enable", kind: "bool"},
			{name: "trt_int8_calibration_table_name", kind: "string"},
			{name: "trt_int8_use_native_calibration_table", kind: "bool"},
			{name: "trt_dla_enable", kind: "bool"},
			{name: "trt_dla_core", kind: "uint"},
			{name: "trt_dump_subgraphs", kind: "bool"},
			{name: "trt_engine_cache_enable", kind: "bool", doc: "Keep compiled engines (default 1)."},
			{name: "trt_engine_cache_path", kind: "string", doc: "Folder kiln keeps its engine folders in, one per graph, size range and version (default: <kiln cache>/tensorrt; relative to the project)."},
			{name: "trt_engine_cache_prefix", kind: "string"},
			{name: "trt_engine_decryption_enable", kind: "bool"},
			{name: "trt_engine_decryption_lib_path", kind: "string"},
			{name: "trt_force_sequential_engine_build", kind: "bool"},
			{name: "trt_context_memory_sharing_enable", kind: "bool"},
			{name: "trt_layer_norm_fp32_fallback", kind: "bool"},
			{name: "trt_timing_cache_enable", kind: "bool", doc: "Keep TensorRT's kernel timings, which speed up later compiles (default 1)."},
			{name: "trt_timing_cache_path", kind: "string", doc: "Folder kiln keeps the timing caches in, one per TensorRT version (default: <kiln cache>/tensorrt; relative to the project)."},
			{name: "trt_force_timing_cache", kind: "bool"},
			{name: "trt_detailed_build_log", kind: "bool"},
			{name: "trt_build_heuristics_enable", kind: "bool"},
			{name: "trt_sparsity_enable", kind: "bool"},
			{name: "trt_builder_optimization_level", kind: "uint", doc: "0 to 5: lower builds faster, higher may run faster (default 3)."},
			{name: "trt_auxiliary_streams", kind: "int"},
			{name: "trt_tactic_sources", kind: "string"},
			{name: "trt_extra_plugin_lib_paths", kind: "string"},
			{name: "trt_cuda_graph_enable", kind: "bool"},
			{name: "trt_engine_hw_compatible", kind: "bool"},
			{name: "trt_op_types_to_exclude", kind: "string"},
			{name: "device_id", refuse: device},
			{name: "trt_profile_min_shapes", refuse: profile},
			{name: "trt_profile_opt_shapes", refuse: profile},
			{name: "trt_profile_max_shapes", refuse: profile},
			{name: "trt_dump_ep_context_model", refuse: context},
			{name: "trt_ep_context_file_path", refuse: context},
			{name: "trt_ep_context_embed_mode", refuse: context},
			{name: "trt_weight_stripped_engine_enable", refuse: "weight-stripped engines need the EP context models kiln does not use"},
			{name: "trt_onnx_model_folder_path", refuse: context},
			{name: "has_user_compute_stream", refuse: pointer},
			{name: "user_compute_stream", refuse: pointer},
			{name: "trt_onnx_bytestream", refuse: pointer},
			{name: "trt_onnx_bytestream_size", refuse: pointer},
			{name: "trt_external_data_bytestream", refuse: pointer},
			{name: "trt_external_data_bytestream_size", refuse: pointer},
		}
	}
	return nil
}

// ProviderOptionKeys lists, sorted, the options runtime.provider_options
// may set for provider (cuda or tensorrt; nil for others).
func ProviderOptionKeys(provider string) []string {
	var keys []string
	for _, o := range providerOptionTable(provider) {
		if o.refuse == "" {
			keys = append(keys, o.name)
		}
	}
	sort.Strings(keys)
	return keys
}

// providerOptionsSpec is runtime.provider_options.<provider>: its options,
// each converted to the string ONNX Runtime takes.
func providerOptionsSpec(provider string) *spec {
	var fields []*field
	for _, o := range providerOptionTable(provider) {
		fields = append(fields, fld(o.name, providerOptionSpec(provider, o)))
	}
	return obj("Options of the "+provider+" execution provider.", fields...)
}

func providerOptionSpec(provider string, o providerOption) *spec {
	doc := o.doc
	if doc == "" {
		doc = "ONNX Runtime's " + provider + " option " + o.name + "."
	}
	asString := func(d *decoder, p string, v *value) (any, bool) {
		switch x := v.v.(type) {
		case bool:
			if x {
				return "1", true
			}
			return "0", true
		case int64:
			return strconv.FormatInt(x, 10), true
		case string:
			return x, true
		}
		return nil, false
	}
	switch {
	case o.refuse != "":
		return str("Not settable: "+o.refuse+".").loose().x("not", map[string]any{}).with(func(d *decoder, p string, v *value) (any, bool) {
			d.add(v.pos, p, fmt.Sprintf("%s provider option %s cannot be set", provider, o.name), o.refuse)
			return nil, false
		})
	case o.kind == "bool":
		return anyOf(doc, boolean(""), integer("").rng(0, 1), enum("", "0", "1", "true", "false")).
			describe("true, false, 0 or 1").with(func(d *decoder, p string, v *value) (any, bool) {
			if s, ok := v.v.(string); ok {
				v.v = s == "1" || s == "true"
			}
			if i, ok := v.v.(int64); ok {
				v.v = i == 1
			}
			return asString(d, p, v)
		})
	case o.kind == "uint" || o.kind == "int":
		pattern, what := `^[0-9]+$`, "a non-negative integer"
		n := integer("").atLeast(0)
		if o.kind == "int" {
			pattern, what, n = `^-?[0-9]+$`, "an integer", integer("")
		}
		re := regexp.MustCompile(pattern)
		return anyOf(doc, n, str("").pat(pattern)).describe(what).with(func(d *decoder, p string, v *value) (any, bool) {
			if s, ok := v.v.(string); ok && !re.MatchString(s) {
				d.add(v.pos, p, fmt.Sprintf("expected %s, got %s", what, quote(s)), "")
				return nil, false
			}
			return asString(d, p, v)
		})
	case o.kind == "size":
		size := byteSizePost(0, 1<<50)
		return anyOf(doc, integer("").atLeast(0), str("").pat(bytesPattern)).describe(`a byte count or a size like "4GiB"`).
			with(func(d *decoder, p string, v *value) (any, bool) {
				n, ok := size(d, p, v)
				if !ok {
					return nil, false
				}
				return strconv.FormatInt(n.(int64), 10), true
			})
	case o.kind == "enum":
		return enum(doc, o.enum...)
	}
	return str(doc).nonempty("").with(asString)
}
