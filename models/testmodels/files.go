package testmodels

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-dev/kiln/models/onnx"
)

// generator writes one flavour's folder.
type generator struct {
	spec Spec
	opts Options
	dir  string

	vocab, merges []byte // tokenizer files, loaded once
}

func (g *generator) mkdir(sub string) error {
	if err := os.MkdirAll(filepath.Join(g.dir, sub), 0o755); err != nil {
		return err
	}
	return nil
}

// writeJSON writes v as indented JSON with sorted keys, as diffusers'
// save_pretrained does.
func (g *generator) writeJSON(rel string, v any) error {
	data, err := marshal(v, "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if err := g.mkdir(filepath.Dir(rel)); err != nil {
		return err
	}
	return onnx.WriteFileAtomic(filepath.Join(g.dir, rel), data)
}

// marshal encodes v as JSON without escaping <, > and & (tokenizer files
// hold "<|endoftext|>" literally).
func marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type obj = map[string]any

func lib(a, b string) []any { return []any{a, b} }

var none = []any{nil, nil}

func (g *generator) writeIndex() error {
	s := g.spec
	idx := obj{
		"_class_name":        s.Pipeline,
		"_diffusers_version": "0.30.0",
		"scheduler":          lib("diffusers", s.Scheduler),
		"text_encoder":       lib("transformers", "CLIPTextModel"),
		"tokenizer":          lib("transformers", "CLIPTokenizer"),
		"unet":               lib("diffusers", "UNet2DConditionModel"),
		"vae":                lib("diffusers", "AutoencoderKL"),
		"feature_extractor":  none,
		"image_encoder":      none,
		"safety_checker":     none,
	}
	switch s.Flavour {
	case DiffusersLegacy:
		// OnnxStableDiffusionPipeline.save_pretrained lists each ONNX
		// component as an OnnxRuntimeModel.
		idx = obj{
			"_class_name":        s.Pipeline,
			"_diffusers_version": "0.6.0",
			"feature_extractor":  none,
			"safety_checker":     none,
			"scheduler":          lib("diffusers", s.Scheduler),
			"text_encoder":       lib("diffusers", "OnnxRuntimeModel"),
			"tokenizer":          lib("transformers", "CLIPTokenizer"),
			"unet":               lib("diffusers", "OnnxRuntimeModel"),
			"vae_decoder":        lib("diffusers", "OnnxRuntimeModel"),
			"vae_encoder":        lib("diffusers", "OnnxRuntimeModel"),
		}
	case SDXL:
		idx["text_encoder_2"] = lib("transformers", "CLIPTextModelWithProjection")
		idx["tokenizer_2"] = lib("transformers", "CLIPTokenizer")
		idx["force_zeros_for_empty_prompt"] = true
		delete(idx, "safety_checker")
	default:
		idx["requires_safety_checker"] = false
	}
	return g.writeJSON("model_index.json", idx)
}

func (g *generator) writeScheduler() error {
	s := g.spec
	c := obj{
		"_class_name":         s.Scheduler,
		"_diffusers_version":  "0.30.0",
		"beta_start":          0.00085,
		"beta_end":            0.012,
		"beta_schedule":       "scaled_linear",
		"num_train_timesteps": 1000,
		"set_alpha_to_one":    false,
		"skip_prk_steps":      true,
		"steps_offset":        1,
		"clip_sample":         false,
		"trained_betas":       nil,
	}
	if s.TimestepSpacing != "" {
		c["timestep_spacing"] = s.TimestepSpacing
	}
	switch s.Flavour {
	case DiffusersLegacy:
		// SD 1.5's original config predates prediction_type and
		// timestep_spacing; readers must apply the defaults.
		c["_diffusers_version"] = "0.6.0"
	case SD2V:
		c["_diffusers_version"] = "0.8.0"
		c["prediction_type"] = s.PredictionType
	case SDXL, Turbo:
		c["prediction_type"] = s.PredictionType
		c["interpolation_type"] = "linear"
		c["use_karras_sigmas"] = false
		c["sample_max_value"] = 1.0
	case LCM:
		delete(c, "skip_prk_steps")
		c["prediction_type"] = s.PredictionType
		c["set_alpha_to_one"] = true
		c["original_inference_steps"] = 50
		c["timestep_scaling"] = 10.0
		c["clip_sample_range"] = 1.0
		c["thresholding"] = false
		c["dynamic_thresholding_ratio"] = 0.995
		c["sample_max_value"] = 1.0
		c["rescale_betas_zero_snr"] = false
	default:
		c["prediction_type"] = s.PredictionType
	}
	return g.writeJSON("scheduler/scheduler_config.json", c)
}

// writeConfigs writes the per-component config.json files optimum exports
// carry (the legacy script wrote none).
func (g *generator) writeConfigs() error {
	s := g.spec
	if !s.HasVAEConfig {
		return nil
	}
	dtype := "float32"
	if s.Float == onnx.Float16 {
		dtype = "float16"
	}
	vae := obj{
		"_class_name":        "AutoencoderKL",
		"_diffusers_version": "0.30.0",
		"in_channels":        3,
		"out_channels":       3,
		"latent_channels":    latentChannels,
		"sample_size":        8 * s.SampleSize,
		"scaling_factor":     s.VAEScale,
		"block_out_channels": []int{8, 16, 16, 16}, // 2^(4-1) = VAE factor 8, as the graphs scale
	}
	if s.Flavour == SDXL {
		vae["force_upcast"] = true
	}
	for _, dir := range []string{"vae_encoder", "vae_decoder"} {
		if err := g.writeJSON(dir+"/config.json", vae); err != nil {
			return err
		}
	}
	unet := obj{
		"_class_name":         "UNet2DConditionModel",
		"_diffusers_version":  "0.30.0",
		"in_channels":         s.UNetInChannels,
		"out_channels":        latentChannels,
		"sample_size":         s.SampleSize,
		"cross_attention_dim": s.TextDim + s.Text2Dim,
		"block_out_channels":  []int{unetChannels, unetChannels},
		"time_cond_proj_dim":  nil,
	}
	if s.TimeCondDim > 0 {
		unet["time_cond_proj_dim"] = s.TimeCondDim
	}
	if s.TextEmbedsDim > 0 {
		unet["addition_embed_type"] = "text_time"
		unet["projection_class_embeddings_input_dim"] = s.TextEmbedsDim + 6*256
		unet["addition_time_embed_dim"] = 256
	}
	if err := g.writeJSON("unet/config.json", unet); err != nil {
		return err
	}
	text := func(dim int, arch string) obj {
		return obj{
			"architectures":           []string{arch},
			"model_type":              "clip_text_model",
			"hidden_size":             dim,
			"intermediate_size":       4 * dim,
			"num_hidden_layers":       textLayers,
			"num_attention_heads":     1,
			"max_position_embeddings": seqLen,
			"vocab_size":              49408,
			"bos_token_id":            0,
			"eos_token_id":            2,
			"pad_token_id":            1,
			"projection_dim":          s.TextEmbedsDim,
			"torch_dtype":             dtype,
		}
	}
	if err := g.writeJSON("text_encoder/config.json", text(s.TextDim, "CLIPTextModel")); err != nil {
		return err
	}
	if s.Text2Dim > 0 {
		return g.writeJSON("text_encoder_2/config.json", text(s.Text2Dim, "CLIPTextModelWithProjection"))
	}
	return nil
}

// writeTokenizers writes tokenizer/ (and tokenizer_2/ for SDXL).
func (g *generator) writeTokenizers() error {
	if err := g.loadVocab(); err != nil {
		return err
	}
	if err := g.writeTokenizer("tokenizer", g.spec.PadToken, g.spec.Flavour == SDXL); err != nil {
		return err
	}
	if g.spec.PadToken2 != "" {
		return g.writeTokenizer("tokenizer_2", g.spec.PadToken2, true)
	}
	return nil
}

func (g *generator) loadVocab() error {
	if g.vocab != nil {
		return nil
	}
	if g.opts.VocabDir == "" {
		g.vocab, g.merges = tinyVocab()
		return nil
	}
	var err error
	if g.vocab, err = os.ReadFile(filepath.Join(g.opts.VocabDir, "vocab.json")); err != nil {
		return fmt.Errorf("tokenizer vocabulary: %w", err)
	}
	if g.merges, err = os.ReadFile(filepath.Join(g.opts.VocabDir, "merges.txt")); err != nil {
		return fmt.Errorf("tokenizer merges: %w", err)
	}
	return nil
}

// addedToken is the object form transformers writes for special tokens.
func addedToken(content string) obj {
	return obj{"content": content, "lstrip": false, "normalized": true, "rstrip": false, "single_word": false}
}

// writeTokenizer writes one tokenizer folder. Older transformers wrote
// special tokens as AddedToken objects; newer ones (SDXL era) write strings
// plus added_tokens_decoder. Both forms appear in the wild, so the
// flavours use both.
func (g *generator) writeTokenizer(dir, pad string, modern bool) error {
	if err := g.mkdir(dir); err != nil {
		return err
	}
	if err := onnx.WriteFileAtomic(filepath.Join(g.dir, dir, "vocab.json"), g.vocab); err != nil {
		return err
	}
	if err := onnx.WriteFileAtomic(filepath.Join(g.dir, dir, "merges.txt"), g.merges); err != nil {
		return err
	}
	const bos, eos = "<|startoftext|>", "<|endoftext|>"
	var cfg, special obj
	if modern {
		cfg = obj{
			"add_prefix_space":             false,
			"bos_token":                    bos,
			"clean_up_tokenization_spaces": true,
			"do_lower_case":                true,
			"eos_token":                    eos,
			"errors":                       "replace",
			"model_max_length":             seqLen,
			"pad_token":                    pad,
			"tokenizer_class":              "CLIPTokenizer",
			"unk_token":                    eos,
			"added_tokens_decoder": obj{
				"49406": obj{"content": bos, "lstrip": false, "normalized": true, "rstrip": false, "single_word": false, "special": true},
				"49407": obj{"content": eos, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
			},
		}
		special = obj{"bos_token": addedToken(bos), "eos_token": addedToken(eos), "pad_token": addedToken(pad), "unk_token": addedToken(eos)}
	} else {
		tok := func(s string) obj {
			o := addedToken(s)
			o["__type"] = "AddedToken"
			return o
		}
		cfg = obj{
			"add_prefix_space":        false,
			"bos_token":               tok(bos),
			"do_lower_case":           true,
			"eos_token":               tok(eos),
			"errors":                  "replace",
			"model_max_length":        seqLen,
			"name_or_path":            "openai/clip-vit-large-patch14",
			"pad_token":               pad,
			"special_tokens_map_file": "./special_tokens_map.json",
			"tokenizer_class":         "CLIPTokenizer",
			"unk_token":               tok(eos),
		}
		special = obj{"bos_token": addedToken(bos), "eos_token": addedToken(eos), "pad_token": pad, "unk_token": addedToken(eos)}
	}
	if err := g.writeJSON(dir+"/tokenizer_config.json", cfg); err != nil {
		return err
	}
	return g.writeJSON(dir+"/special_tokens_map.json", special)
}

// tinyWords are the words the generated vocabulary has whole-word tokens
// for; anything else splits into smaller pieces, down to single bytes.
var tinyWords = []string{
	"a", "photo", "of", "cat", "dog", "painting", "hello", "world", "hi", "there",
	"red", "stone", "brick", "wall", "grass", "texture", "tileable", "seamless",
	"sprite", "pixel", "art", "fantasy", "castle", "wood", "metal", "the", "and",
}

// byteRunes is CLIP's (and GPT-2's) reversible byte-to-unicode table:
// printable Latin-1 bytes map to themselves, the rest to code points from
// 256 up, in byte order. The returned order is the vocabulary order.
func byteRunes() []rune {
	var order []int
	printable := map[int]bool{}
	for _, r := range [][2]int{{'!', '~'}, {0xa1, 0xac}, {0xae, 0xff}} {
		for b := r[0]; b <= r[1]; b++ {
			order = append(order, b)
			printable[b] = true
		}
	}
	out := make([]rune, 0, 256)
	for _, b := range order {
		out = append(out, rune(b))
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !printable[b] {
			out = append(out, rune(256+n))
			n++
		}
	}
	return out
}

// tinyVocab builds a small vocabulary in CLIP's format: the 256 byte
// symbols, the same with the end-of-word marker </w>, merges that build
// each of tinyWords left to right, then <|startoftext|> and <|endoftext|>
// last, as in CLIP. "!" is id 0 as in the real vocabulary.
func tinyVocab() (vocab, merges []byte) {
	runes := byteRunes()
	ids := map[string]int{}
	var tokens []string
	add := func(t string) {
		if _, ok := ids[t]; !ok {
			ids[t] = len(tokens)
			tokens = append(tokens, t)
		}
	}
	for _, r := range runes {
		add(string(r))
	}
	for _, r := range runes {
		add(string(r) + "</w>")
	}
	var mergeLines []string
	seen := map[string]bool{}
	for _, w := range tinyWords {
		parts := strings.Split(w, "")
		parts[len(parts)-1] += "</w>"
		cur := parts[0]
		for _, p := range parts[1:] {
			line := cur + " " + p
			cur += p
			if !seen[line] {
				seen[line] = true
				mergeLines = append(mergeLines, line)
				add(cur)
			}
		}
	}
	add("<|startoftext|>")
	add("<|endoftext|>")
	// Encode in id order, keys escaped as JSON strings.
	var b strings.Builder
	b.WriteByte('{')
	for i, t := range tokens {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := marshal(t, "")
		fmt.Fprintf(&b, "%s:%d", bytes.TrimSpace(k), i)
	}
	b.WriteString("}\n")
	m := "#version: 0.2\n" + strings.Join(mergeLines, "\n") + "\n"
	return []byte(b.String()), []byte(m)
}
