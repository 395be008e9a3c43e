// Package manifests reads a kiln project: its kiln.yaml and its manifest
// files, checked and resolved into Assets, Atlases and Materials that the
// pipeline, generators and exporters consume.
//
// # Project
//
// A project is a folder with kiln.yaml (output and cache folders, manifest
// globs, named models, ONNX Runtime settings, defaults, limits) and any
// number of manifests, by default every **/*.kiln.yaml outside dot-folders.
// Load reads them all and returns every problem of every file at once (an
// ErrorList, one "file:line:col: field: message (hint)" per line, a YAML
// syntax error followed by its source line with a caret under the
// column), or a Project, whose Warnings list the matched files it skipped
// (symlinks and special files) and the prompts builtin:exemplar cannot
// read. Besides the files themselves, Load checks that each exemplars:
// image exists, so kiln validate finds what a build would stop at.
//
// # Containment
//
// Load reads kiln.yaml and the manifests through an os.Root: a symlink
// that leads out of the project is an error naming the link and its
// target, and the target is not read. kiln writes into the output folder
// and kiln clean --cache deletes what kiln keeps in the cache folder, so each must be a
// folder inside the project that is not the project itself, not in or
// above a .git, .hg or .svn folder, and apart from the other, from every
// manifest and from every file or model folder the project reads
// (neither holding nor inside any of them); paths are compared as
// written, cleaned. runtime.library names a native library kiln loads, so
// kiln.yaml may only name one outside the project; a library inside it
// is chosen with --ort-lib or KILN_ORT_LIB.
//
// # Manifest layout (schema version 1)
//
// A manifest is a mapping with version: 1 and optional defaults:, assets:,
// atlases: and materials:. Fields common to all generated kinds sit on the
// asset itself; each kind's own options sit in one block named after the
// kind: image:, texture:, tileable:, sprite: (kind sprite-sheet) and
// concept: (kind concept-art). A block of another kind is an error, as is a
// generation field (prompt, steps, ...) on a hand-made image.
//
//	# yaml-language-server: $schema=./.kiln/manifest.schema.json
//	version: 1
//	defaults:
//	  steps: 20
//	  sprite: {fps: 10}
//	assets:
//	  - id: ui/button
//	    kind: image
//	    image: {source: art/button.png}
//	  - id: dungeon/floor
//	    kind: texture
//	    prompt: mossy cobblestone
//	    size: 512                    # or [512, 768] or "512x768"
//	    texture:
//	      maps: [albedo, normal, roughness, ao, orm]
//	      normal_strength: 2
//	      tile: xy
//	    material: {repeat: [2, 2]}   # a glTF material from this texture's maps
//	  - id: hero/walk
//	    kind: sprite-sheet
//	    prompt: knight walking
//	    from: concept/hero           # img2img from another asset
//	    pick: 1                      # its second variation
//	    sprite:
//	      frames: 8                  # or a list of per-frame prompts
//	      key_color: "#ff00ff"       # quoted: # starts a YAML comment
//	      pixel_art: {factor: 4, colors: 16}
//	  - id: concept/hero
//	    kind: concept-art
//	    prompt: armoured knight
//	    concept: {variations: 4, hires: {scale: 2}}
//	atlases:
//	  - id: ui/main
//	    include: ["ui/*", hero/walk]  # ids and globs over ids
//	    formats: [json-hash, godot]
//	materials:
//	  - id: props/floor
//	    base_color: dungeon/floor     # a texture gives its albedo here,
//	    normal: {asset: dungeon/floor, map: normal}
//	    orm: dungeon/floor            # its orm map here
//
// Ids are lower-case segments of [a-z0-9_-] joined by "/"; they name output
// files, so "..", ".", absolute paths, drive letters, backslashes and
// Windows device names are refused. Assets, atlases and materials share one
// set of ids across all files (an inline material: has its asset's id).
// Paths (image.source, exemplars, sprite.pixel_art.palette, model folders,
// output, cache) are relative to the project root and may not leave it.
//
// YAML anchors, aliases and merge keys (<<: *base) work, within limits:
// a file whose aliases expand to far more nodes than it holds is refused as
// an alias bomb, nesting deeper than MaxDepth is refused, and a file larger
// than limits.max_manifest_bytes is refused before it is parsed.
//
// # Defaults and precedence
//
// See DocDefaults; the same text is meant for the README.
//
// # Editor support
//
// JSONSchema and ConfigSchema are generated from the same field tables the
// parser uses. kiln init writes them to SchemaPath and ConfigSchemaPath, and
// the starter files name them in a yaml-language-server modeline
// (SchemaModeline gives the line for a manifest in a sub-folder).
package manifests

// DocDefaults explains defaults and their precedence, in Markdown, for the
// README and kiln's help.
const DocDefaults = "### Defaults and precedence\n\n" +
	"A value comes from the first of these that sets it:\n\n" +
	"1. the asset (atlas, material) itself;\n" +
	"2. the `defaults:` block of the manifest file it is in;\n" +
	"3. the `defaults:` block of `kiln.yaml`;\n" +
	"4. kiln's built-in default.\n\n" +
	"Blocks merge field by field: `defaults: {sprite: {fps: 10}}` changes the frame rate of every sprite sheet and " +
	"leaves its other sprite options alone; lists and sizes are replaced whole, not merged.\n" +
	"A defaults block may hold the generation fields `model`, `negative_prompt`, `seed`, `steps`, `guidance`, " +
	"`scheduler`, `size`, `strength`, `exemplars`, `tags`, `loras`, the kind blocks `texture`, `tileable`, `sprite`, `concept`, " +
	"and `atlas` and `material` blocks for atlases and materials (options only, not ids or references).\n" +
	"A default applies only where it means something: generation fields skip `kind: image` assets, a kind block applies " +
	"to assets of that kind, and `exemplars` only to assets that use the `builtin:exemplar` model. " +
	"Error messages point at the line that set the value, in whichever file that is.\n\n" +
	"Built-in defaults that depend on the model are left to the model: `steps`, `guidance`, `scheduler` and `size` " +
	"(1024 for SDXL models, 512 otherwise). Without `model:` anywhere, an asset uses the only model in `kiln.yaml`, " +
	"or `builtin:exemplar` when none is configured. Without `seed:` anywhere, an asset's seed is derived from its id " +
	"(32 bits of FNV-1a), so builds are reproducible and two assets with one prompt still differ; renaming an asset " +
	"changes its seed.\n"
