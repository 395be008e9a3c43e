package pipeline

// Generation says what a generated (diffusion) stage makes its image
// from, for the build report: a reader can tell which seed, step count,
// model and execution provider made a published image without decoding
// its recipe. The pipeline copies it from Stage.Generation into the
// stage's report and puts nothing of it in the cache key: the stage's
// Params and Models already hold every part of it.
type Generation struct {
	// Seed is the noise seed.
	Seed int64 `json:"seed"`
	// Steps is the number of denoising steps asked for.
	Steps int `json:"steps"`
	// Model is the model's name in kiln.yaml (or builtin:exemplar).
	Model string `json:"model"`
	// ModelFingerprint identifies the model's content (Stage.Models).
	ModelFingerprint string `json:"model_fingerprint"`
	// Provider is the class of execution provider the result belongs to
	// ("cpu", "cuda", "tensorrt-fp16", ...): providers compute the same
	// graph with different kernels, so their images differ, and the class
	// is part of the stage's key.
	Provider string `json:"provider"`
}
