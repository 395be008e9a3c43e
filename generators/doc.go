// Package generators expands manifest assets into pipeline stages: hand-made
// images (kind: image) and the diffusion kinds (texture, tileable,
// sprite-sheet, concept-art). The diffusion loop itself lives in the
// sampler subpackage and the pixel operations in imageops.
//
// # Planning
//
// Plan turns a loaded project into stages. It asks a ModelSet only cheap
// questions (Describe, Fingerprint), so planning never loads ONNX Runtime;
// models are opened when a stage runs and stay loaded in the ModelSet for
// later stages and rebuilds. Every asset's unset parameters are resolved
// from its model's defaults (size 1024 for SDXL, 512 for other folders,
// 256 for builtin:exemplar; the model's steps, guidance and scheduler), and
// the resolved values are the stages' Params, so they are in the cache keys
// and shown by --explain. A from: reference becomes a dependency on the
// stage that makes the source image, with the from: field's position.
//
// Diffusion stages run under the pipeline's accelerator limit; keying,
// PBR derivation, sheets and contact sheets are separate CPU stages, so
// changing a post-processing setting (normal_strength, a palette file,
// the key colour, the frame size) never runs the diffusion again.
//
// # Stages
//
//	kind          stages (asset id "a")
//	image         a:source
//	tileable      a:generate
//	texture       a:generate (albedo), a:derive (the other maps)
//	sprite-sheet  a:frame_000 … (one per frame), a:sheet
//	concept-art   a:variation_000 … (one per variation), a:hires_000 … (with hires:), a:contact
//
// Sprite frames: frame 0 is generated from the prompt (text to image);
// every later frame is image to image from frame 0 at strength
// 1 − consistency, so the character stays the same. With from:, every
// frame starts from that art instead. Per-frame prompts are added to the
// asset's prompt and share its seed; frames without their own prompt use
// seed, seed+1, … so they differ. builtin:exemplar sprite sheets without
// from: are flipbooks instead: every frame is made from the prompt with the
// shared seed and noise, and moved by the frame's part of a looping flow
// (exemplar.Model.Animate) with motion 1 − consistency, so fire, water and
// smoke move smoothly and the loop closes. With a key background, diffusion models
// are asked for "isolated on a flat solid <colour> background" and the
// colour is keyed out with soft alpha and decontamination; builtin:exemplar
// flipbooks keep their background unless background: is set. Pixel-art
// mode downscales by the factor (nearest neighbour), resizes to frame_size
// if that differs, hardens alpha, and quantises every frame to one shared
// palette (median cut to colors, or the palette file).
//
// Concept-art variation k uses seed+k. A hires pass upscales it by
// hires.scale (rounded to the model's 8-pixel blocks) and runs image to
// image at hires.strength.
//
// # Memory
//
// Before a stage decodes or allocates anything large it estimates its
// peak memory, by arithmetic on sizes and counts (the image headers it
// reads give the sizes of its inputs): its image buffers in the order it
// allocates them, the sampler's latents and tensors
// (sampler.EstimateMemory), and the model's own (exemplar.EstimateMemory,
// models.Folder.EstimateMemory: ONNX Runtime's weights, working memory and
// threads). The Go heap's part is bounded by what the collector lets it
// hold (GOGC). The estimate is checked against the smaller of
// runtime.memory_budget and what the system has left (MemoryProbe: free
// memory, the cgroup's limit, the address-space limit), less what the
// stages running beside it were admitted with. A stage that does not fit
// waits while other stages run; alone, it first frees what it can (the Go
// heap's garbage, idle ONNX Runtime sessions other than those it will
// use), then fails before allocating, at its asset's position, with the
// estimate, the budget and where it comes from, and the size (frames,
// hires scale) that would fit.
//
// # Output files
//
// Published paths, relative to the output folder, for asset id "a"
// (ids are paths, so "dungeon/floor" writes into out/dungeon/):
//
//	a.png                      the asset's main image: the image, the
//	                           tileable image, the texture albedo, the
//	                           sprite-sheet grid sheet, the concept-art
//	                           contact sheet
//	a_normal.png, a_height.png, a_roughness.png, a_ao.png, a_orm.png,
//	a_metallic.png             texture maps (those listed in maps:)
//	a/frame_000.png …          sprite frames, in play order
//	a.json                     sprite animation metadata (Animation)
//	a/variation_000.png …      concept-art variations (after hires)
//
// Numbers have three digits, more when the count needs them. Normal maps
// and ORM are RGB, height is 16-bit gray, roughness, AO and metallic are
// 8-bit gray. Every PNG carries its recipe in text chunks (prompt,
// negative prompt, seed, model fingerprint, scheduler, steps, guidance,
// kiln version, and kind-specific extras), readable with InspectRecipe;
// derived maps, frames and sheets carry the recipe of the image they come
// from plus their own settings.
//
// Exporters do not spell these names: MapImage, SourceImage, Frames and
// Variations return the stage and output (OutputRef) holding each image,
// and ReadAnimation reads a sprite-sheet's metadata.
package generators
