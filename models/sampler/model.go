// Package sampler runs the diffusion loop: schedulers, classifier-free
// guidance, txt2img and img2img, and seed parity with PyTorch's CPU
// generator. It talks to a model only through the Model interface, so the
// same loop drives Stable-Diffusion-format ONNX folders and kiln's built-in
// models. A Batcher lets generations running at once share their UNet
// calls without changing their images.
package sampler

import "context"

// Tensor is a dense float32 tensor in row-major (NCHW) order.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// Cond is the text conditioning for a batch of prompts.
type Cond struct {
	// Hidden is encoder_hidden_states, [batch, tokens, dim].
	Hidden Tensor
	// Pooled is the pooled text embedding SDXL UNets take as text_embeds,
	// [batch, dim]; empty for other models.
	Pooled Tensor
}

// Info describes what a model needs from the sampler.
type Info struct {
	// LatentChannels is the UNet's latent channel count (4 for SD/SDXL).
	LatentChannels int
	// VAEFactor is the spatial down-scaling of the VAE (8 for SD/SDXL).
	// Image sizes must be multiples of it.
	VAEFactor int
	// ScalingFactor multiplies VAE latents before the UNet sees them
	// (0.18215 for SD 1.x/2.x, 0.13025 for SDXL, or the VAE config's value).
	ScalingFactor float64
	// DefaultSize is the model's native square size (512, 768 or 1024).
	DefaultSize int
	// SDXL reports that the UNet takes text_embeds and time_ids.
	SDXL bool
	// TimestepCondDim is the width of the LCM guidance embedding the UNet
	// takes as timestep_cond, or 0 when it takes none.
	TimestepCondDim int
	// Scheduler is the model folder's scheduler/scheduler_config.json,
	// decoded as a generic JSON object (nil when absent).
	Scheduler map[string]any
	// Provider names the execution provider that runs the model.
	Provider string
	// InpaintingUNet reports a UNet made for inpainting (SD inpainting
	// exports): its sample has 2·LatentChannels+1 channels, the latents
	// followed by the mask and the masked image's latents, and it returns
	// LatentChannels. It runs only with Request.Mask.
	InpaintingUNet bool
	// RowTimesteps reports that the UNet takes one timestep per row
	// (UNetInput.Timesteps), so that a Batcher can stack generations
	// that are at different steps.
	RowTimesteps bool
}

// UNetInput is one denoiser call on a batch.
type UNetInput struct {
	// Latents are the scaled, scheduler-preconditioned latents,
	// [batch, channels, h, w].
	Latents Tensor
	// Timestep is the scheduler's timestep for this call; the model converts
	// it to the dtype and rank its graph declares.
	Timestep float64
	// Timesteps, when not empty, gives each row its own timestep,
	// overriding Timestep; only models whose Info says RowTimesteps
	// take it.
	Timesteps []float64
	// Cond is the conditioning, with the same batch size as Latents.
	Cond Cond
	// TimeIDs is SDXL's [batch, 6] size conditioning; empty otherwise.
	TimeIDs Tensor
	// TimestepCond is LCM's [batch, dim] guidance embedding; empty otherwise.
	TimestepCond Tensor
	// Out is a buffer the size of the prediction that the model may write
	// the prediction into and return as the result's Data, so that no
	// full-size buffer is allocated per step. It is reused from step to
	// step; a model may ignore it and return a buffer of its own.
	Out []float32
}

// Model is a diffusion model as the sampler sees it.
//
// The sampler reuses the buffers of the tensors it passes in from one call
// to the next, so an implementation must not keep them after a call
// returns; the tensors it returns belong to the sampler.
type Model interface {
	// Info describes the model.
	Info() Info
	// EncodeText tokenises and encodes a batch of prompts. Warnings (such
	// as a prompt truncated to 77 tokens) are returned for the report.
	EncodeText(ctx context.Context, prompts []string) (Cond, []string, error)
	// UNet predicts the model output (noise, v or sample, as the scheduler
	// config's prediction_type says) for a batch.
	UNet(ctx context.Context, in UNetInput) (Tensor, error)
	// DecodeLatents turns unscaled latents (already divided by
	// ScalingFactor) into images in [-1, 1], [batch, 3, H, W].
	DecodeLatents(ctx context.Context, latents Tensor) (Tensor, error)
	// EncodeImage turns images in [-1, 1], [batch, 3, H, W], into the VAE's
	// latent distribution: its mean and log-variance (logvar may be empty
	// when the encoder returns only a sample), both unscaled.
	EncodeImage(ctx context.Context, images Tensor) (mean, logvar Tensor, err error)
}

// Recycler is implemented by models that can reuse the memory of the
// images they decode. Once the sampler has converted the tensor
// DecodeLatents returned, it hands it back through Recycle and never
// touches it again, so the model may decode the next image into the same
// buffer instead of allocating (and zeroing) megabytes per image.
type Recycler interface {
	Recycle(t Tensor)
}
