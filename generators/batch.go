package generators

import (
	"strings"

	"github.com/kiln-dev/kiln/models"
)

// DefaultBatch is runtime.batch on GPU execution providers when kiln.yaml
// sets none: up to two assets denoised in one UNet call. The memory check
// counts host memory, not the GPU's, and the bound is also how many
// accelerator stages run at once (batched or not), so the default is
// small: GPU memory use was not measured here. Raise it on large GPUs.
const DefaultBatch = 2

// BatchSize is the runtime.batch a build runs with: configured (kiln.yaml's
// runtime.batch, 0 when not written) or, by default, DefaultBatch on the
// cuda, tensorrt and directml providers and 1 (no batching) elsewhere. On
// the CPU batching is off unless asked for: BenchmarkBatch measures
// whether it helps there. Batching changes no image (see sampler.Batcher).
func BatchSize(configured int, provider string) int {
	if configured > 0 {
		return configured
	}
	switch strings.ToLower(strings.TrimSpace(provider)) {
	case models.ProviderCUDA, models.ProviderTensorRT, models.ProviderDirectML:
		return DefaultBatch
	}
	return 1
}
