package models

import (
	"path/filepath"
	"runtime"

	"github.com/kiln-dev/kiln/models/sampler"
)

// FolderMemoryOptions describe a generation for Folder.EstimateMemory.
type FolderMemoryOptions struct {
	// Rows is how many images one UNet call carries (2 under
	// classifier-free guidance); 0 means 1.
	Rows int
	// Img2Img says the VAE encoder runs (an init image).
	Img2Img bool
	// Threads is ONNX Runtime's intra-op thread count per session; 0 means
	// one per CPU, an upper bound of ONNX Runtime's default.
	Threads int
}

// Memory parameters of model folders' graphs on ONNX Runtime (CPU).
const (
	// memActivationSlack covers what ONNX Runtime's memory planner holds
	// beyond the largest tensors counted: small tensors and alignment.
	memActivationSlack = 1.25
	// memTextEncoderBytes bounds a text encoder's working memory (77 tokens).
	memTextEncoderBytes = 64 << 20
	// memSessionBytes is a session's bookkeeping besides weights and
	// working memory.
	memSessionBytes = 32 << 20
	// memArenaSlack is the address space ONNX Runtime's CPU arena maps
	// beyond what it uses, as a fraction of that (it extends in regions
	// of doubling size, up to 1 GiB; measured up to 10% for the test
	// models' VAE at 2048x2048). Under an address-space limit it maps
	// less.
	memArenaSlack = 0.2
	// memWorkerReserve is the address space of one ONNX Runtime worker
	// thread: its stack and the C allocator's arena it gets.
	memWorkerReserve = 72 << 20
)

// EstimateMemory returns what a w×h generation on the folder's model adds
// to sampler.EstimateMemory, by arithmetic on the folder's configuration
// files and the sizes of its weight files, without loading anything.
//
// Weights count twice while a session loads (the file's tensors and ONNX
// Runtime's own copies) and once after; the address space ONNX Runtime's
// arenas map beyond their working memory (a fifth more) counts as
// reserved. Working memory is that of the
// architecture diffusers builds from the component configs, in float32,
// with attention computed in full (as exported graphs do):
//
//   - UNet, per row: the skip connections of every down block, plus the
//     largest level: 6 feature maps of C channels, or, in a block with
//     attention, the heads×N² scores and their softmax (N latent pixels
//     at that level) and 16 feature maps for the projections and the
//     feed-forward.
//   - VAE decoder: the largest of its mid-block attention (N² scores and
//     softmax at latent size), a ResNet block (Cin + 3·Cout channels at
//     its resolution) and an upsampler (2·C channels at the next one).
//   - VAE encoder (img2img): the same for its down blocks.
//
// A component without a config.json is estimated as Stable Diffusion
// 1.x's (its widths, 8 attention heads, attention in the VAE's mid block).
// Attention is counted where the config says there is some: in the
// down_block_types with "Attn" (and the mid block) of the UNet, in the
// VAE's mid block (mid_block_add_attention, or a config diffusers wrote);
// a config that does not name its blocks is taken at its word (no
// self-attention). Graphs fused for memory-efficient attention need less
// than this.
func (f *Folder) EstimateMemory(w, h int, o FolderMemoryOptions) sampler.ModelMemory {
	const f32 = 4
	rows := int64(max(o.Rows, 1))
	threads := o.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	vf := int64(max(f.VAEFactor, 1))
	lw, lh := int64(w)/vf, int64(h)/vf
	pixels := int64(w) * int64(h)
	latentCh := int64(4)
	if c, ok := memConfigInt(f.UNetConfig, "in_channels"); ok && c > 0 {
		latentCh = int64(c)
	}
	per := latentCh * lw * lh
	m := sampler.ModelMemory{
		// fp16 graphs add a half-precision copy of every input and
		// output (two bytes per value) to the float32 buffers.
		UNet:   rows * per * 2 * 2,
		Decode: 3*pixels*(f32+2) + per*2,
		Encode: 3*pixels*2 + 4*per*f32,
	}
	vae := f.memVAEConfig()
	comps := []struct {
		name string
		work int64
	}{
		{TextEncoder, memTextEncoderBytes},
		{UNet, memUNetBytes(f.UNetConfig, lw, lh) * rows},
		{VAEDecoder, memVAEDecoderBytes(vae, lw, lh)},
	}
	if f.SDXL {
		comps = append(comps, struct {
			name string
			work int64
		}{TextEncoder2, memTextEncoderBytes})
	}
	if o.Img2Img {
		comps = append(comps, struct {
			name string
			work int64
		}{VAEEncoder, memVAEEncoderBytes(vae, lw, lh)})
	}
	var largest int64
	for _, c := range comps {
		weights := estimateModelBytes(f.Path(c.name), "")
		largest = max(largest, weights)
		m.Native += weights + c.work + memSessionBytes
		m.Reserved += int64(threads-1)*memWorkerReserve + int64(memArenaSlack*float64(c.work))
	}
	m.Native += largest // the copy held while the largest session loads
	return m
}

// memVAEConfig reads the VAE's config.json (the decoder's, else the
// encoder's); nil when there is none or it cannot be read.
func (f *Folder) memVAEConfig() map[string]any {
	for _, c := range []string{VAEDecoder, VAEEncoder} {
		cfg, err := readOptionalJSON(filepath.Join(f.Dir, c, "config.json"))
		if err == nil && cfg != nil {
			return cfg
		}
	}
	return nil
}

// memUNetBytes bounds one UNet row's working memory at latent size lw×lh.
func memUNetBytes(cfg map[string]any, lw, lh int64) int64 {
	chans := memConfigInts(cfg, "block_out_channels", []int{320, 640, 1280, 1280})
	// diffusers writes every block type into the configs it saves; a
	// config without them is not diffusers' (and is taken to have no
	// self-attention), no config at all is taken to be Stable
	// Diffusion's.
	var types []string
	if cfg == nil {
		types = []string{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}
	} else {
		types = memConfigStrings(cfg, "down_block_types", nil)
	}
	layers, ok := memConfigInt(cfg, "layers_per_block")
	if !ok || layers < 1 {
		layers = 2
	}
	heads := memConfigInts(cfg, "num_attention_heads", nil)
	if heads == nil {
		heads = memConfigInts(cfg, "attention_head_dim", []int{8})
	}
	n := lw * lh
	var skips, peak int64
	for l, c := range chans {
		c := int64(c)
		skips += int64(layers+1) * c * n
		// The up path's ResNets read the concatenated skip (2C).
		level := 6 * c * n
		if l < len(types) && memAttentionBlock(types[l]) {
			hd := int64(heads[min(l, len(heads)-1)])
			level = max(level, 2*hd*n*n+16*c*n)
		}
		peak = max(peak, level)
		if l < len(chans)-1 {
			n = (n + 3) / 4
		}
	}
	if len(types) > 0 {
		// The mid block attends at the lowest resolution.
		c := int64(chans[len(chans)-1])
		hd := int64(heads[len(heads)-1])
		peak = max(peak, 2*hd*n*n+16*c*n)
	}
	return int64(float64((skips+peak)*4) * memActivationSlack)
}

// memVAEDecoderBytes bounds the VAE decoder's working memory for latents of
// lw×lh.
func memVAEDecoderBytes(cfg map[string]any, lw, lh int64) int64 {
	chans := memConfigInts(cfg, "block_out_channels", []int{128, 256, 512, 512})
	n := lw * lh
	peak := memVAEMidBytes(cfg, int64(chans[len(chans)-1]), n)
	in := int64(chans[len(chans)-1])
	for i := len(chans) - 1; i >= 0; i-- {
		out := int64(chans[i])
		peak = max(peak, (in+3*out)*n)
		if i > 0 {
			n *= 4
			peak = max(peak, 2*out*n)
		}
		in = out
	}
	peak = max(peak, 2*in*n+3*n) // the output convolution
	return int64(float64(peak*4) * memActivationSlack)
}

// memVAEEncoderBytes bounds the VAE encoder's working memory for latents of
// lw×lh (images of the VAE factor times that).
func memVAEEncoderBytes(cfg map[string]any, lw, lh int64) int64 {
	chans := memConfigInts(cfg, "block_out_channels", []int{128, 256, 512, 512})
	n := lw * lh
	for range chans[1:] {
		n *= 4
	}
	in := int64(chans[0])
	peak := (3 + in) * n // the input convolution
	for i, c := range chans {
		out := int64(c)
		peak = max(peak, (in+3*out)*n)
		if i < len(chans)-1 {
			// The downsampler pads its input, then convolves with
			// stride 2.
			peak = max(peak, 2*out*n+out*n/4)
			n = (n + 3) / 4
		}
		in = out
	}
	peak = max(peak, memVAEMidBytes(cfg, in, n))
	return int64(float64(peak*4) * memActivationSlack)
}

// memVAEMidBytes is the VAE mid block's attention at n latent pixels of c
// channels, in floats: scores and softmax, and the projections.
//
// The mid block has attention unless mid_block_add_attention is false;
// a config without it has attention when diffusers wrote it (it names
// its block types: diffusers before the field always added attention)
// or when there is no config at all.
func memVAEMidBytes(cfg map[string]any, c, n int64) int64 {
	attn := cfg == nil
	if v, ok := cfg["mid_block_add_attention"].(bool); ok {
		attn = v
	} else if cfg != nil {
		_, down := cfg["down_block_types"]
		_, up := cfg["up_block_types"]
		attn = down || up
	}
	if !attn {
		return 5 * c * n
	}
	return 2*n*n + 5*c*n
}

// memAttentionBlock reports whether a diffusers down block type has
// attention ("CrossAttnDownBlock2D", "AttnDownBlock2D", ...).
func memAttentionBlock(t string) bool {
	for i := 0; i+4 <= len(t); i++ {
		if t[i:i+4] == "Attn" {
			return true
		}
	}
	return false
}

// memConfigInt reads an integer field of a JSON config.
func memConfigInt(cfg map[string]any, key string) (int, bool) {
	v, ok := cfg[key].(float64)
	if !ok || v != float64(int(v)) {
		return 0, false
	}
	return int(v), true
}

// memConfigInts reads a field that is an integer or a list of positive
// integers; def when it is absent or malformed.
func memConfigInts(cfg map[string]any, key string, def []int) []int {
	switch v := cfg[key].(type) {
	case float64:
		if v >= 1 && v == float64(int(v)) {
			return []int{int(v)}
		}
	case []any:
		var out []int
		for _, x := range v {
			n, ok := x.(float64)
			if !ok || n < 1 || n != float64(int(n)) {
				return def
			}
			out = append(out, int(n))
		}
		if len(out) > 0 {
			return out
		}
	}
	return def
}

// memConfigStrings reads a list of strings; def when absent or malformed.
func memConfigStrings(cfg map[string]any, key string, def []string) []string {
	v, ok := cfg[key].([]any)
	if !ok || len(v) == 0 {
		return def
	}
	out := make([]string, 0, len(v))
	for _, x := range v {
		s, ok := x.(string)
		if !ok {
			return def
		}
		out = append(out, s)
	}
	return out
}
