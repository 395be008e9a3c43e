package manifests

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
)

// StarterManifest is the manifest file kiln init writes.
const StarterManifest = "assets.kiln.yaml"

// StarterImage is the hand-made picture the starter's image asset uses.
const StarterImage = "art/hello.png"

// Starter returns the files of a new project, by project-relative path:
// kiln.yaml, a manifest with one image asset and commented examples of
// every other kind, the picture that asset uses, both JSON Schemas at
// SchemaPath and ConfigSchemaPath (which the files' modelines name), and a
// .gitignore for the cache. kiln init writes them without overwriting
// existing files. The starter loads cleanly with Load, and so does its
// manifest with every example uncommented.
func Starter() map[string][]byte {
	return map[string][]byte{
		ConfigFile:       []byte(starterConfig),
		StarterManifest:  []byte(starterManifest),
		StarterImage:     starterPNG(),
		SchemaPath:       JSONSchema(),
		ConfigSchemaPath: ConfigSchema(),
		".gitignore":     []byte("# kiln's cache: rebuilt on demand, never commit it.\n/.kiln/cache/\n"),
	}
}

const starterConfig = `# yaml-language-server: $schema=./.kiln/config.schema.json
# kiln project configuration. Only version is required; the values below
# are the built-in defaults unless a comment says otherwise.
version: 1

# Where built assets go, and where kiln keeps its cache: folders of their
# own, holding no manifests, sources or models.
output: out
cache: .kiln/cache

# Which files are manifests (globs relative to this folder; "**" spans
# folders). Dot-folders are skipped; keep manifests out of the output and
# cache folders.
manifests: ["**/*.kiln.yaml"]

# Named models. builtin:exemplar needs no download: it assembles pictures
# from exemplar patches and reads keywords in prompts (stone, brick, grass,
# lava, ...), not sentences. Add Stable Diffusion exports in the ONNX
# folder layout next to it, inside the project:
#   sd15: {path: models/sd15, kind: sd15}
models:
  exemplar: builtin:exemplar

# ONNX Runtime.
runtime:
  device: cpu          # cpu, cuda, tensorrt, coreml, directml or openvino
  # device_id: 0
  # fallback: cpu      # run on the CPU when the device is unavailable
  # threads: 0         # 0: ONNX Runtime decides
  # memory_budget: 4GiB

# Defaults for every manifest (not a built-in value: the starter's choice).
# Precedence: built-in < these < a manifest's defaults: < the asset itself.
defaults:
  model: exemplar
  # steps: 20
  # negative_prompt: blurry, text, watermark

# Limits a typo cannot get past.
limits:
  max_image_size: 8192
  max_steps: 150
  max_frames: 256
  max_variations: 64
  max_manifest_bytes: 4MiB

# For the Godot exporters: the folder holding project.godot.
# godot:
#   project_root: .

watch:
  debounce: 100ms
`

const starterManifest = `# yaml-language-server: $schema=./.kiln/manifest.schema.json
# A kiln manifest: "kiln validate" checks it, "kiln build" builds it, and
# "kiln schema" prints every field. Each kind has its own block of options
# named after it: image, texture, tileable, sprite (sprite-sheet) and
# concept (concept-art).
version: 1

# Defaults for the assets of this file, over kiln.yaml's defaults.
defaults:
  size: 256

assets:
  # A hand-made picture, used as is. Atlases and materials can mix
  # hand-made and generated art.
  - id: ui/hello
    kind: image
    image:
      source: art/hello.png

  # The generated kinds: uncomment an example to build it.
  # - id: dungeon/floor
  #   kind: texture
  #   prompt: mossy cobblestone
  #   texture:
  #     maps: [albedo, normal, roughness, ao, orm]
  #     normal_strength: 2
  #     tile: xy
  #   material:
  #     repeat: [2, 2]
  #
  # - id: dungeon/wall
  #   kind: tileable
  #   prompt: red brick wall
  #   tileable:
  #     tile: xy
  #
  # - id: dungeon/moss
  #   kind: tileable
  #   prompt: moss
  #   exemplars: [art/hello.png]   # your own reference art (builtin:exemplar)
  #
  # - id: fx/fire
  #   kind: sprite-sheet
  #   prompt: fire flames
  #   sprite:
  #     frames: 8
  #     fps: 12
  #     key_color: "#ff00ff"
  #
  # - id: concept/cave
  #   kind: concept-art
  #   prompt: lava cave with dark stone
  #   size: 512
  #   concept:
  #     variations: 4
  #
  # - id: props/lava-rock
  #   kind: tileable
  #   prompt: lava rock
  #   from: concept/cave
  #   pick: 2
  #   strength: 0.6

# atlases:
#   - id: ui/atlas
#     include: ["ui/*", fx/fire]
#     padding: 2
#     formats: [json-hash, godot]
#
# materials:
#   - id: props/floor
#     base_color: dungeon/floor
#     normal: dungeon/floor
#     orm: dungeon/floor
`

// starterPNG draws the starter's hand-made picture: a small flame on a
// transparent background, so an atlas of it shows trimming at work.
func starterPNG() []byte {
	const n = 64
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			// A teardrop: a circle at the bottom narrowing to a tip.
			fx, fy := (float64(x)+0.5)/n-0.5, (float64(y)+0.5)/n
			r := 0.30 * math.Pow(fy, 0.8)
			d := math.Abs(fx) / math.Max(r, 1e-6)
			if fy < 0.1 || fy > 0.95 || d > 1 {
				continue
			}
			t := 1 - d
			img.SetNRGBA(x, y, color.NRGBA{
				R: 255,
				G: uint8(80 + 175*t*fy),
				B: uint8(40 * t),
				A: uint8(math.Min(255, 400*t)),
			})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic("manifests: encode starter image: " + err.Error()) // cannot fail on a bytes.Buffer
	}
	return b.Bytes()
}
