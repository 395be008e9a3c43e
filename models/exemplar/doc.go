// Package exemplar is kiln's built-in diffusion model, builtin:exemplar:
// a training-free denoiser that needs no download, so a fresh machine can
// make real pictures of materials before anyone fetches a Stable
// Diffusion export.
//
// # The denoiser
//
// It is the equivariant local score (ELS) machine of Kamb & Ganguli, "An
// analytic theory of creativity in convolutional diffusion models" (2024):
// the optimal denoiser under locality and translation equivariance. For
// each pixel it predicts the clean value as the softmax-weighted mean of
// the centre pixels of exemplar patches, weighted by how well each patch,
// scaled by the signal level, matches the noisy patch around the pixel:
//
//	w_n ∝ exp(−‖x_patch − sqrt(ᾱ)·e_n‖² / (2(1−ᾱ)))
//
// The patches shrink as the noise falls. Because it is local and
// equivariant it builds new arrangements of exemplar patches (a "patch
// mosaic") instead of copying the exemplars, and with wrap-around padding
// its output tiles.
//
// kiln builds it as ONNX graphs (models/onnx's builder) and runs them on
// ONNX Runtime through the Runtime's session pool, so it runs on every
// execution provider through the same sampler as every other model: patch
// extraction is a fixed Conv over an image padded by Slice+Concat of its
// borders (wrap-around on tiled axes, reflection on the others), the
// comparison a Gemm with the exemplar patch bank (‖x−e‖² expanded as
// ‖x‖² − 2x·e + ‖e‖², the first term cancelling in the softmax), then a
// Softmax over the bank and a MatMul with the centre pixels. Choices kiln
// makes for speed and quality:
//
//   - A bank of 2048 patches (Options.BankSize) drawn on a jittered grid
//     from every exemplar at every offset.
//   - Patches of more than 32 values are compared in the span of their 32
//     principal directions (Options.Dims); the projection is folded into
//     the Conv's kernels, so no 3·p²-channel tensor is ever formed.
//   - While the noise is high, patches are compared on the image
//     average-pooled by 8, 4 or 2 (DefaultPatchSchedule), which gives a
//     wide context cheaply; the weights then use the pooled noise variance
//     (1−ᾱ)/d², and each coarse pixel predicts the full-resolution d×d
//     block under its patch centre (put in place by DepthToSpace), so the
//     prediction stays sharp.
//   - The pixel softmax runs in chunks of about 4 Mi logits, bounding the
//     working memory at any image size.
//   - The sampler runs Euler with x0 prediction (prediction_type
//     "sample") on Karras sigmas from 14.6 to 0.029, DefaultSteps steps.
//
// # Exemplars and prompts
//
// The model reads keywords, not sentences (Select): words naming a
// material or a synonym (stone, rock, brick, cobblestone, wood, planks,
// bark, grass, moss, dirt, gravel, sand, snow, ice, water, lava, metal,
// plates, tiles, fabric, fire, smoke, marble, ...), colour and tone words
// (red, blue, dark, pale, weathered, ...) and overlays (mossy, snowy,
// rusty, dirty, wet, burnt, cracked) count in any order; every other word
// is ignored, "not" included, and named in a warning unless it is a small
// word such as "with". The chosen materials are painted procedurally
// (deterministic, tileable, 128×128, two variants each) and form the bank.
// Studios can give their own reference images instead (Options.Exemplars,
// the manifest's exemplars:).
//
// A prompt with several materials is laid out (composition.go): a smooth
// field per material, or the shape its shape word asks for ("dirt path",
// "water patches", "stripes", "brick border"), weights the bank patches
// of each material per pixel, so each one takes a region;
// Model.MaterialShares measures the result.
//
// Exemplars that are sprites (a transparent border, or a border of one
// flat key colour) are objects (object.go): each pixel prefers the bank
// patches from its own place relative to the object's centre, so a frame
// holds one centred object on a flat background instead of a tiling of
// copies.
//
// A Model is made per asset (New), holding the exemplar bank its prompt
// chose; the sampler's EncodeText returns an empty conditioning, and
// classifier-free guidance does nothing but double the work.
//
// # Animation
//
// Flipbooks (fire, water, lava, smoke) move one image: every frame is
// generated from the same noise and Model.Animate displaces it by a
// smooth flow that circles once per loop, so consecutive frames differ a
// little and alike, and the loop closes. (FlipbookNoise, which puts each
// frame's noise on a closed circle in noise space, is kept for callers
// that vary the noise; on this model such frames strobe, since its
// softmax switches between patches.)
package exemplar
