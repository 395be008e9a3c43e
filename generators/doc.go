// Package generators expands manifest assets into pipeline stages: hand-made
// images (kind: image) and the diffusion kinds (texture, tileable,
// sprite-sheet, concept-art). The diffusion loop itself lives in the
// sampler subpackage and the pixel operations in imageops.
package generators
