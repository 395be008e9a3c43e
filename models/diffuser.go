package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/kiln-dev/kiln/models/lora"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/models/tokenizer"
	ort "github.com/yalue/onnxruntime_go"
)

// DiffuserOptions configures NewDiffuser.
type DiffuserOptions struct {
	// Graphs replaces component graphs with other files, keyed by
	// component name (UNet, VAEDecoder, ...): for example graphs rewritten
	// with circular padding for tileable textures.
	Graphs map[string]string
	// Variant labels the replaced graphs in the session pool, so the
	// rewritten and the original graphs of one model can both stay loaded.
	Variant string
	// GraphData gives, per component, the folder ONNX Runtime reads the
	// external weights of that component's graph from, when they are not
	// beside the graph file: for a variant in Graphs whose weights could
	// not be hard-linked into kiln's cache (another file system), the
	// original's folder, as tiling.Graph.ExternalDataDir names it. Such a
	// graph is loaded from memory (see SessionSpec.ExternalDataDir), and
	// so is the float32-timestep variant kiln derives from it for fp16
	// UNets. Components without an entry read their weights from beside
	// their graph.
	GraphData map[string]string
	// Log receives warnings (such as an export without the hidden states
	// SDXL conditions on); nil discards them.
	Log *slog.Logger
	// LoRAs are merged, in order, into the weights of the UNet and text
	// encoders they have modules for, as those graphs load (see
	// LoRAMerge). A LoRA with modules for a component the model lacks is
	// an error from NewDiffuser; one whose modules do not match the
	// graph's weights is an error (a *lora.MatchError) when the graph
	// first loads.
	LoRAs []lora.Weighted
	// Batch, when 2 or more, makes the Diffuser's Batcher stack the UNet
	// calls of up to Batch generations running at once (see
	// sampler.Batcher); below 2 it has none.
	Batch int
}

// Diffuser is a model folder running on a Runtime, as the sampler sees it:
// it implements sampler.Model. Graph inputs and outputs are read from the
// sessions, so the differences between exports (int64, float or rank-0
// timesteps; fp16 weights; SDXL's text_embeds and time_ids; LCM's
// timestep_cond; latent_sample or latent_parameters from the VAE encoder)
// are handled here and not in the sampler.
//
// Sessions come from the Runtime's pool on every call and go back after
// it, so several Diffusers share loaded graphs and the pool may evict
// idle ones. A Diffuser is safe for concurrent use.
type Diffuser struct {
	rt   *Runtime
	f    *Folder
	info sampler.Info
	log  *slog.Logger

	tok1, tok2 *tokenizer.Tokenizer
	te1, te2   *textEncoder
	unet       unetGraph
	dec        vaeGraph
	enc        *vaeGraph
	scratch    scratchPool // text encoders and VAE
	// unetScratch is kept apart from scratch so that the UNet's
	// conversion buffers and remembered conditioning are not displaced
	// by the VAE's much larger ones.
	unetScratch scratchPool
	// decoded holds up to maxRecycled buffers of decoded images the
	// sampler has handed back through Recycle, for the next DecodeLatents
	// to write into: a 512² image is 3 MB that would otherwise be
	// allocated and zeroed for every image.
	decodedMu sync.Mutex
	decoded   [][]float32
	// batcher stacks concurrent generations' UNet calls; nil when
	// DiffuserOptions.Batch is below 2.
	batcher *sampler.Batcher
}

// maxRecycled bounds the decode buffers a Diffuser keeps: one per
// generation running at once is plenty.
const maxRecycled = 2

var (
	_ sampler.Model    = (*Diffuser)(nil)
	_ sampler.Recycler = (*Diffuser)(nil)
)

// graphComponents are the components whose graphs DiffuserOptions can
// replace or point at other weights.
var graphComponents = []string{TextEncoder, TextEncoder2, UNet, VAEDecoder, VAEEncoder}

func errOrNotDir(err error) error {
	if err != nil {
		return err
	}
	return errors.New("not a folder")
}

// graphRef is one component graph: how to acquire it and what it looks
// like.
type graphRef struct {
	what string // "unet/model.onnx", for messages
	spec SessionSpec
	info GraphInfo
}

type textEncoder struct {
	graphRef
	ids    string // input_ids
	mask   string // attention_mask, "" when the graph has none
	hidden string // output for encoder_hidden_states
	pooled string // output for SDXL's text_embeds, "" when unused
	tokens int
}

type unetGraph struct {
	graphRef
	sample, timestep, hidden, textEmbeds, timeIDs, timestepCond TensorInfo
	out                                                         TensorInfo
}

type vaeGraph struct {
	graphRef
	in, out TensorInfo
}

// NewDiffuser opens the graphs of a model folder on rt: it reads every
// graph's signature (from kiln's cache after the first time), loads the
// tokenizers, and checks that the components fit together. Sessions are
// created on first use (or by Preload).
func NewDiffuser(rt *Runtime, f *Folder, opts DiffuserOptions) (*Diffuser, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Diffuser{rt: rt, f: f, log: log}
	d.unetScratch.keepViews = true
	var err error
	if d.tok1, err = tokenizer.Load(filepath.Join(f.Dir, Tokenizer)); err != nil {
		return nil, fmt.Errorf("model %s: %w", f.Dir, err)
	}
	if f.SDXL {
		if d.tok2, err = tokenizer.Load(filepath.Join(f.Dir, Tokenizer2)); err != nil {
			return nil, fmt.Errorf("model %s: %w", f.Dir, err)
		}
	}
	for _, c := range sortedKeys(opts.GraphData) {
		if !slices.Contains(graphComponents, c) {
			return nil, fmt.Errorf("model %s: DiffuserOptions.GraphData names %q, which is not a model component (components: %s)", f.Dir, c, strings.Join(graphComponents, ", "))
		}
		if dir := opts.GraphData[c]; dir != "" {
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return nil, fmt.Errorf("model %s: the external weights folder %s given for %s is not a folder kiln can read (%v): the weights must stay where the graph was made from", f.Dir, dir, c, errOrNotDir(err))
			}
		}
	}
	merges, err := loraMerges(f, opts.LoRAs)
	if err != nil {
		return nil, err
	}
	ref := func(component string) (graphRef, error) {
		path, variant := f.Path(component), ""
		if p, ok := opts.Graphs[component]; ok {
			path, variant = p, opts.Variant
		}
		spec := SessionSpec{Path: path, Variant: variant, ExternalDataDir: opts.GraphData[component], LoRA: merges[component]}
		info, err := rt.specGraphInfo(spec)
		if err != nil {
			return graphRef{}, err
		}
		what := component + "/model.onnx"
		if variant != "" {
			what = fmt.Sprintf("%s (%s variant %s)", what, variant, path)
		}
		if spec.ExternalDataDir != "" {
			what = fmt.Sprintf("%s (weights in %s)", what, spec.ExternalDataDir)
		}
		return graphRef{what: what, spec: spec, info: info}, nil
	}

	if d.te1, err = d.textEncoder(ref, TextEncoder, d.tok1, false); err != nil {
		return nil, err
	}
	if f.SDXL {
		if d.te2, err = d.textEncoder(ref, TextEncoder2, d.tok2, true); err != nil {
			return nil, err
		}
	}
	if err := d.setupUNet(ref); err != nil {
		return nil, err
	}
	if d.dec, err = d.vae(ref, VAEDecoder, []string{"sample"}); err != nil {
		return nil, err
	}
	if f.Has(VAEEncoder) || opts.Graphs[VAEEncoder] != "" {
		enc, err := d.vae(ref, VAEEncoder, []string{"latent_parameters", "latent_sample", "latent_dist"})
		if err != nil {
			return nil, err
		}
		d.enc = &enc
	}

	size := f.SampleSize * f.VAEFactor
	if size == 0 && d.unet.sample.Shape[2] > 0 {
		size = int(d.unet.sample.Shape[2]) * f.VAEFactor
	}
	if size == 0 {
		size = 512
		if f.SDXL {
			size = 1024
		}
	}
	d.info.DefaultSize = size
	d.info.VAEFactor = f.VAEFactor
	d.info.ScalingFactor = f.ScalingFactor
	d.info.Scheduler = f.Scheduler
	if err := d.checkWidths(); err != nil {
		return nil, err
	}
	if opts.Batch >= 2 {
		d.batcher = sampler.NewBatcher(d, opts.Batch)
	}
	return d, nil
}

// Batcher returns the Batcher that stacks the UNet calls of generations
// running at once on the Diffuser, for sampler.Request.Batcher; nil when
// DiffuserOptions.Batch did not ask for batching.
func (d *Diffuser) Batcher() *sampler.Batcher { return d.batcher }

// Info describes the model; Provider is the execution provider that runs
// it now.
func (d *Diffuser) Info() sampler.Info {
	info := d.info
	info.Provider = d.rt.Provider()
	return info
}

// Folder is the model folder.
func (d *Diffuser) Folder() *Folder { return d.f }

// Preload creates every session now (text encoders, UNet, VAE), so the
// first denoising step does not pay for loading.
func (d *Diffuser) Preload(ctx context.Context) error {
	refs := []graphRef{d.te1.graphRef, d.unet.graphRef, d.dec.graphRef}
	if d.te2 != nil {
		refs = append(refs, d.te2.graphRef)
	}
	if d.enc != nil {
		refs = append(refs, d.enc.graphRef)
	}
	for _, r := range refs {
		s, err := d.rt.Acquire(ctx, r.spec)
		if err != nil {
			return err
		}
		s.Release()
	}
	return nil
}

// ---- set-up ----

func (d *Diffuser) textEncoder(ref func(string) (graphRef, error), component string, tok *tokenizer.Tokenizer, second bool) (*textEncoder, error) {
	g, err := ref(component)
	if err != nil {
		return nil, err
	}
	te := &textEncoder{graphRef: g, tokens: tok.MaxLength()}
	for _, in := range g.info.Inputs {
		switch {
		case in.Name == "input_ids" || (te.ids == "" && isInt(in.Type) && in.Rank() == 2 && in.Name != "attention_mask"):
			te.ids = in.Name
			if in.Shape[1] > 0 && int(in.Shape[1]) != te.tokens {
				return nil, fmt.Errorf("%s takes %d tokens, but its tokenizer makes %d", g.what, in.Shape[1], te.tokens)
			}
		case in.Name == "attention_mask":
			te.mask = in.Name
		default:
			return nil, fmt.Errorf("%s has input %s that kiln does not know how to fill (it fills input_ids and attention_mask)", g.what, in)
		}
	}
	if te.ids == "" {
		return nil, fmt.Errorf("%s has no input_ids input (inputs: %s)", g.what, strings.Join(names(g.info.Inputs), ", "))
	}

	// SDXL conditions on the penultimate hidden state of both encoders
	// (hidden_states[-2]); other models on last_hidden_state.
	if d.f.SDXL {
		if h := penultimateHidden(g.info.Outputs); h != "" {
			te.hidden = h
		} else if _, ok := g.info.Output("last_hidden_state"); ok {
			te.hidden = "last_hidden_state"
			d.log.Warn("text encoder export has no hidden_states outputs; SDXL conditioning uses last_hidden_state, so images differ from diffusers'", "graph", g.what)
		}
	} else if _, ok := g.info.Output("last_hidden_state"); ok {
		te.hidden = "last_hidden_state"
	}
	if te.hidden == "" {
		for _, o := range g.info.Outputs {
			if o.Rank() == 3 {
				te.hidden = o.Name
				break
			}
		}
	}
	if te.hidden == "" {
		return nil, fmt.Errorf("%s has no [batch, tokens, width] output for the text embeddings (outputs: %s)", g.what, strings.Join(names(g.info.Outputs), ", "))
	}
	outputs := []string{te.hidden}
	if second {
		for _, name := range []string{"text_embeds", "pooler_output"} {
			if o, ok := g.info.Output(name); ok && o.Rank() == 2 {
				te.pooled = name
				break
			}
		}
		if te.pooled == "" {
			return nil, fmt.Errorf("%s has no text_embeds output, which SDXL's UNet needs (outputs: %s)", g.what, strings.Join(names(g.info.Outputs), ", "))
		}
		outputs = append(outputs, te.pooled)
	}
	te.spec.Outputs = outputs
	var sel []TensorInfo
	for _, n := range outputs {
		o, _ := g.info.Output(n)
		sel = append(sel, o)
	}
	te.info.Outputs = sel
	return te, nil
}

// penultimateHidden returns the output hidden_states.N with the second
// largest N (optimum names hidden_states.0, the embeddings, up to
// hidden_states.L, the last layer), or "".
func penultimateHidden(outs []TensorInfo) string {
	var idx []int
	for _, o := range outs {
		if n, ok := strings.CutPrefix(o.Name, "hidden_states."); ok {
			if i, err := strconv.Atoi(n); err == nil {
				idx = append(idx, i)
			}
		}
	}
	if len(idx) < 2 {
		return ""
	}
	sort.Ints(idx)
	return "hidden_states." + strconv.Itoa(idx[len(idx)-2])
}

func isInt(t ort.TensorElementDataType) bool {
	return t == ort.TensorElementDataTypeInt64 || t == ort.TensorElementDataTypeInt32
}

func isFloat(t ort.TensorElementDataType) bool {
	return t == ort.TensorElementDataTypeFloat || t == ort.TensorElementDataTypeFloat16 || t == ort.TensorElementDataTypeDouble
}

func (d *Diffuser) setupUNet(ref func(string) (graphRef, error)) error {
	g, err := ref(UNet)
	if err != nil {
		return err
	}
	if scalars := scalarF16Inputs(g.info); len(scalars) > 0 {
		path, extDir, err := scalarF32Variant(d.rt.cacheDir, g.spec.Path, g.spec.ExternalDataDir, scalars)
		if err != nil {
			return err
		}
		variant := VariantScalarF32
		if g.spec.Variant != "" {
			variant = g.spec.Variant + "+" + variant
		}
		spec := SessionSpec{Path: path, Variant: variant, ExternalDataDir: extDir, LoRA: g.spec.LoRA}
		info, err := d.rt.specGraphInfo(spec)
		if err != nil {
			return err
		}
		g.spec = spec
		g.info = info
		d.log.Debug("feeding float16 scalar inputs through a float32 variant", "graph", g.what, "inputs", scalars, "variant", path)
	}
	u := &d.unet
	u.graphRef = g
	var unknown []string
	for _, in := range g.info.Inputs {
		switch in.Name {
		case "sample", "x", "latent_model_input":
			u.sample = in
		case "timestep", "timesteps", "t":
			u.timestep = in
		case "encoder_hidden_states", "context":
			u.hidden = in
		case "text_embeds":
			u.textEmbeds = in
		case "time_ids":
			u.timeIDs = in
		case "timestep_cond":
			u.timestepCond = in
		default:
			unknown = append(unknown, in.String())
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%s has inputs kiln does not know how to fill: %s (it fills sample, timestep, encoder_hidden_states, text_embeds, time_ids and timestep_cond)", g.what, strings.Join(unknown, ", "))
	}
	var missing []string
	for _, r := range []struct {
		name string
		ti   TensorInfo
	}{{"sample", u.sample}, {"timestep", u.timestep}, {"encoder_hidden_states", u.hidden}} {
		if r.ti.Name == "" {
			missing = append(missing, r.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s lacks the inputs %s every diffusion UNet has (inputs: %s)", g.what, strings.Join(missing, ", "), strings.Join(names(g.info.Inputs), ", "))
	}
	if u.sample.Rank() != 4 || !isFloat(u.sample.Type) {
		return fmt.Errorf("%s input %s: want a float [batch, channels, height, width] tensor", g.what, u.sample)
	}
	if u.timestep.Rank() > 1 || !(isFloat(u.timestep.Type) || isInt(u.timestep.Type)) {
		return fmt.Errorf("%s input %s: want a number or a [batch] tensor", g.what, u.timestep)
	}
	if u.hidden.Rank() != 3 {
		return fmt.Errorf("%s input %s: want [batch, tokens, width]", g.what, u.hidden)
	}
	u.out = g.info.Outputs[0]
	if o, ok := g.info.Output("out_sample"); ok {
		u.out = o
	}
	if u.out.Rank() != 4 {
		return fmt.Errorf("%s output %s: want [batch, channels, height, width]", g.what, u.out)
	}
	u.spec.Outputs = []string{u.out.Name}
	u.info.Outputs = []TensorInfo{u.out}

	sdxl := u.textEmbeds.Name != "" && u.timeIDs.Name != ""
	if (u.textEmbeds.Name != "") != (u.timeIDs.Name != "") {
		return fmt.Errorf("%s takes only one of text_embeds and time_ids; SDXL UNets take both", g.what)
	}
	if sdxl && !d.f.SDXL {
		return fmt.Errorf("%s is an SDXL UNet (it takes text_embeds and time_ids), but model folder %s has no text_encoder_2", g.what, d.f.Dir)
	}
	if !sdxl && d.f.SDXL {
		return fmt.Errorf("model folder %s has a second text encoder (SDXL), but %s does not take text_embeds and time_ids", d.f.Dir, g.what)
	}
	d.info.SDXL = sdxl
	// A [batch] timestep whose length follows the batch takes one
	// timestep per row.
	d.info.RowTimesteps = u.timestep.Rank() == 1 && u.timestep.Shape[0] <= 0

	d.info.LatentChannels = 4
	if c := u.sample.Shape[1]; c > 0 {
		d.info.LatentChannels = int(c)
	} else if c, ok := d.f.UNetConfig["in_channels"].(float64); ok && c > 0 {
		d.info.LatentChannels = int(c)
	}
	if err := d.inpaintingUNet(g.what, u); err != nil {
		return err
	}
	if u.timestepCond.Name != "" {
		if u.timestepCond.Rank() != 2 {
			return fmt.Errorf("%s input %s: want [batch, width]", g.what, u.timestepCond)
		}
		dim := int(u.timestepCond.Shape[1])
		if dim <= 0 {
			if c, ok := d.f.UNetConfig["time_cond_proj_dim"].(float64); ok {
				dim = int(c)
			}
		}
		if dim <= 0 {
			return fmt.Errorf("%s input %s: its width is not fixed and unet/config.json has no time_cond_proj_dim", g.what, u.timestepCond)
		}
		d.info.TimestepCondDim = dim
	}
	return nil
}

func (d *Diffuser) vae(ref func(string) (graphRef, error), component string, outNames []string) (vaeGraph, error) {
	g, err := ref(component)
	if err != nil {
		return vaeGraph{}, err
	}
	v := vaeGraph{graphRef: g}
	if len(g.info.Inputs) != 1 {
		return vaeGraph{}, fmt.Errorf("%s has inputs %s; kiln expects one image or latent input", g.what, strings.Join(names(g.info.Inputs), ", "))
	}
	v.in = g.info.Inputs[0]
	v.out = g.info.Outputs[0]
	for _, n := range outNames {
		if o, ok := g.info.Output(n); ok {
			v.out = o
			break
		}
	}
	if v.in.Rank() != 4 || v.out.Rank() != 4 || !isFloat(v.in.Type) {
		return vaeGraph{}, fmt.Errorf("%s: want [batch, channels, height, width] float input and output, it has %s -> %s", g.what, v.in, v.out)
	}
	v.spec.Outputs = []string{v.out.Name}
	v.info.Outputs = []TensorInfo{v.out}
	return v, nil
}

// checkWidths checks, where the graphs fix them, that the text encoders'
// embeddings have the width the UNet takes.
func (d *Diffuser) checkWidths() error {
	width := func(te *textEncoder) int64 {
		o := te.info.Outputs[0]
		return o.Shape[2]
	}
	want := d.unet.hidden.Shape[2]
	got := width(d.te1)
	if d.te2 != nil {
		w2 := width(d.te2)
		if got > 0 && w2 > 0 {
			got += w2
		} else {
			got = -1
		}
	}
	if want > 0 && got > 0 && want != got {
		return fmt.Errorf("%s takes %d-wide text embeddings, but the text encoder(s) make %d: the folder mixes components of different models", d.unet.what, want, got)
	}
	if d.info.SDXL && d.te2 != nil {
		p, _ := d.te2.info.Output(d.te2.pooled)
		if w := d.unet.textEmbeds.Shape; len(w) == 2 && w[1] > 0 && len(p.Shape) == 2 && p.Shape[1] > 0 && w[1] != p.Shape[1] {
			return fmt.Errorf("%s takes %d-wide text_embeds, but %s makes %d", d.unet.what, w[1], d.te2.what, p.Shape[1])
		}
	}
	return nil
}

// ---- sampler.Model ----

// EncodeText tokenises the prompts (77 tokens, truncating longer ones with
// a warning) and encodes them. SDXL concatenates the penultimate hidden
// states of both encoders and takes the pooled embedding from the second.
func (d *Diffuser) EncodeText(ctx context.Context, prompts []string) (sampler.Cond, []string, error) {
	if len(prompts) == 0 {
		return sampler.Cond{}, nil, errors.New("encode text: no prompts")
	}
	var warnings []string
	ids1, trunc := tokenize(d.tok1, prompts)
	for i, tr := range trunc {
		if tr {
			warnings = append(warnings, fmt.Sprintf("prompt truncated to %d tokens: %q", d.tok1.MaxLength(), shorten(prompts[i])))
		}
	}
	h1, _, err := d.encode(ctx, d.te1, ids1, len(prompts))
	if err != nil {
		return sampler.Cond{}, warnings, err
	}
	if d.te2 == nil {
		return sampler.Cond{Hidden: h1}, warnings, nil
	}
	ids2, _ := tokenize(d.tok2, prompts)
	h2, pooled, err := d.encode(ctx, d.te2, ids2, len(prompts))
	if err != nil {
		return sampler.Cond{}, warnings, err
	}
	if h1.Shape[0] != h2.Shape[0] || h1.Shape[1] != h2.Shape[1] {
		return sampler.Cond{}, warnings, fmt.Errorf("text encoders disagree: %s makes %v, %s makes %v", d.te1.what, h1.Shape, d.te2.what, h2.Shape)
	}
	return sampler.Cond{Hidden: concatLast(h1, h2), Pooled: pooled}, warnings, nil
}

func tokenize(tok *tokenizer.Tokenizer, prompts []string) ([]int64, []bool) {
	n := tok.MaxLength()
	ids := make([]int64, 0, n*len(prompts))
	trunc := make([]bool, len(prompts))
	for i, p := range prompts {
		t, tr := tok.Encode(p)
		ids = append(ids, t...)
		trunc[i] = tr
	}
	return ids, trunc
}

func shorten(s string) string {
	r := []rune(s)
	if len(r) > 60 {
		return string(r[:57]) + "..."
	}
	return s
}

// concatLast joins two [B, T, Da] and [B, T, Db] tensors into [B, T, Da+Db].
func concatLast(a, b sampler.Tensor) sampler.Tensor {
	B, T, da, db := int(a.Shape[0]), int(a.Shape[1]), int(a.Shape[2]), int(b.Shape[2])
	out := make([]float32, B*T*(da+db))
	for r := 0; r < B*T; r++ {
		copy(out[r*(da+db):], a.Data[r*da:(r+1)*da])
		copy(out[r*(da+db)+da:], b.Data[r*db:(r+1)*db])
	}
	return sampler.Tensor{Shape: []int64{int64(B), int64(T), int64(da + db)}, Data: out}
}

func (d *Diffuser) encode(ctx context.Context, te *textEncoder, ids []int64, batch int) (hidden, pooled sampler.Tensor, err error) {
	s, err := d.rt.Acquire(ctx, te.spec)
	if err != nil {
		return hidden, pooled, err
	}
	defer s.Release()
	sc := d.scratch.get()
	defer d.scratch.put(sc)
	shape := []int64{int64(batch), int64(te.tokens)}
	feeds := map[string]feedValue{te.ids: {shape: shape, i64: ids}}
	if te.mask != "" {
		ones := make([]int64, len(ids))
		for i := range ones {
			ones[i] = 1
		}
		feeds[te.mask] = feedValue{shape: shape, i64: ones}
	}
	fetches := []fetch{{name: te.hidden, shape: []int64{int64(batch), int64(te.tokens), -1}}}
	if te.pooled != "" {
		fetches = append(fetches, fetch{name: te.pooled, shape: []int64{int64(batch), -1}})
	}
	res, err := run(ctx, s, te.what, sc, feeds, fetches)
	if err != nil {
		return hidden, pooled, err
	}
	hidden = res[0]
	if len(hidden.Shape) != 3 || hidden.Shape[0] != int64(batch) {
		return hidden, pooled, fmt.Errorf("%s output %q has shape %v, want [%d, tokens, width]", te.what, te.hidden, hidden.Shape, batch)
	}
	if te.pooled != "" {
		pooled = res[1]
		if len(pooled.Shape) != 2 || pooled.Shape[0] != int64(batch) {
			return hidden, pooled, fmt.Errorf("%s output %q has shape %v, want [%d, width]", te.what, te.pooled, pooled.Shape, batch)
		}
	}
	return hidden, pooled, nil
}

// UNet runs one denoiser call. The timestep is given to the graph in the
// type and rank it declares: int64 (truncated, as diffusers' ONNX pipeline
// does with numpy), float32 or float16, as a [batch] tensor or a scalar.
//
// A step allocates no full-size buffer: float32 inputs are handed to ONNX
// Runtime without copying, the prediction is written into in.Out when it
// is large enough and does not overlap the latents (ONNX Runtime writes a
// float32 output straight into it; a float16 output is converted into
// it), and float16 graphs convert their inputs in buffers kept from call
// to call. The conditioning inputs (encoder_hidden_states, text_embeds,
// time_ids, timestep_cond) are the same on every step of a generation, so
// their float16 conversions are kept too and redone only when the values
// change. That check compares values rather than trusting the buffer's
// address, because the sampler may reuse a buffer for new values;
// comparing costs a small fraction of converting (about a thirtieth for
// SD 1.5's 2×77×768 conditioning; BenchmarkFloat16Conversion). The ONNX
// Runtime tensors over the sampler's buffers are kept from step to step
// while it passes the same buffers, which holds those buffers until the
// next call with other ones (see scratch.viewF32).
func (d *Diffuser) UNet(ctx context.Context, in sampler.UNetInput) (sampler.Tensor, error) {
	u := &d.unet
	ls := in.Latents.Shape
	if len(ls) != 4 || len(in.Latents.Data) != numel(ls) {
		return sampler.Tensor{}, fmt.Errorf("unet: latents have shape %v and %d values, want [batch, channels, height, width]", ls, len(in.Latents.Data))
	}
	batch := ls[0]
	if err := checkBatch("unet: encoder_hidden_states (Cond.Hidden)", in.Cond.Hidden, 3, batch); err != nil {
		return sampler.Tensor{}, err
	}
	if u.textEmbeds.Name != "" {
		if err := checkBatch("unet: text_embeds (Cond.Pooled, from text_encoder_2)", in.Cond.Pooled, 2, batch); err != nil {
			return sampler.Tensor{}, err
		}
		if err := checkBatch("unet: time_ids (TimeIDs: original size, crop top-left, target size)", in.TimeIDs, 2, batch); err != nil {
			return sampler.Tensor{}, err
		}
	}
	if u.timestepCond.Name != "" {
		if err := checkBatch("unet: timestep_cond (TimestepCond, LCM's guidance embedding)", in.TimestepCond, 2, batch); err != nil {
			return sampler.Tensor{}, err
		}
	}

	sc := d.unetScratch.get()
	defer d.unetScratch.put(sc)
	feeds := sc.feedMap()
	feeds[u.sample.Name] = feedValue{shape: ls, f32: in.Latents.Data}
	feeds[u.hidden.Name] = feedValue{shape: in.Cond.Hidden.Shape, f32: in.Cond.Hidden.Data, repeats: true}
	if len(in.Timesteps) > 0 {
		if !d.info.RowTimesteps || int64(len(in.Timesteps)) != batch {
			return sampler.Tensor{}, fmt.Errorf("unet: %d timesteps for a batch of %d, and %s takes %s", len(in.Timesteps), batch, u.what, u.timestep)
		}
		ts := sc.floats(int(batch))
		for i, t := range in.Timesteps {
			ts[i] = float32(t)
		}
		feeds[u.timestep.Name] = feedValue{shape: []int64{batch}, f32: ts}
	} else if u.timestep.Rank() == 0 {
		ts := sc.floats(1)
		ts[0] = float32(in.Timestep)
		feeds[u.timestep.Name] = feedValue{f32: ts}
	} else {
		n := batch
		if u.timestep.Shape[0] > 0 {
			n = u.timestep.Shape[0]
		}
		ts := sc.floats(int(n))
		for i := range ts {
			ts[i] = float32(in.Timestep)
		}
		feeds[u.timestep.Name] = feedValue{shape: []int64{n}, f32: ts}
	}
	if u.textEmbeds.Name != "" {
		feeds[u.textEmbeds.Name] = feedValue{shape: in.Cond.Pooled.Shape, f32: in.Cond.Pooled.Data, repeats: true}
		feeds[u.timeIDs.Name] = feedValue{shape: in.TimeIDs.Shape, f32: in.TimeIDs.Data, repeats: true}
	}
	if u.timestepCond.Name != "" {
		feeds[u.timestepCond.Name] = feedValue{shape: in.TimestepCond.Shape, f32: in.TimestepCond.Data, repeats: true}
	}
	outC := ls[1]
	if d.info.InpaintingUNet {
		outC = int64(d.info.LatentChannels)
	}
	if c := u.out.Shape[1]; c > 0 {
		outC = c
	}
	shape := []int64{batch, outC, ls[2], ls[3]}
	dst := in.Out
	if overlaps(dst, in.Latents.Data) {
		// ONNX Runtime would overwrite the latents while reading them.
		dst = nil
	}

	s, err := d.rt.Acquire(ctx, u.spec)
	if err != nil {
		return sampler.Tensor{}, err
	}
	defer s.Release()
	res, err := run(ctx, s, u.what, sc, feeds, []fetch{{name: u.out.Name, shape: shape, prealloc: true, dst: dst}})
	if err != nil {
		return sampler.Tensor{}, err
	}
	return res[0], nil
}

// overlaps reports whether a and b share memory.
func overlaps(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0 := uintptr(unsafe.Pointer(&a[0]))
	b0 := uintptr(unsafe.Pointer(&b[0]))
	return a0 < b0+uintptr(4*len(b)) && b0 < a0+uintptr(4*len(a))
}

func checkBatch(what string, t sampler.Tensor, rank int, batch int64) error {
	if len(t.Shape) == 0 {
		return fmt.Errorf("%s is missing", what)
	}
	if len(t.Shape) != rank || t.Shape[0] != batch || len(t.Data) != numel(t.Shape) {
		return fmt.Errorf("%s has shape %v and %d values, want rank %d with batch %d", what, t.Shape, len(t.Data), rank, batch)
	}
	return nil
}

// DecodeLatents runs the VAE decoder on unscaled latents and returns images
// in [-1, 1].
func (d *Diffuser) DecodeLatents(ctx context.Context, latents sampler.Tensor) (sampler.Tensor, error) {
	v := &d.dec
	ls := latents.Shape
	if len(ls) != 4 || len(latents.Data) != numel(ls) {
		return sampler.Tensor{}, fmt.Errorf("vae decoder: latents have shape %v and %d values, want [batch, channels, height, width]", ls, len(latents.Data))
	}
	f := int64(d.info.VAEFactor)
	c := v.out.Shape[1]
	if c <= 0 {
		c = 3
	}
	shape := []int64{ls[0], c, ls[2] * f, ls[3] * f}
	out, err := d.runVAE(ctx, v, latents, shape, d.vaeHint(), d.decodeBuffer(numel(shape)))
	if err != nil {
		return sampler.Tensor{}, err
	}
	if err := checkFinite(v.what, out); err != nil {
		return sampler.Tensor{}, fmt.Errorf("%w: the VAE overflowed (fp16 VAEs of SDXL do; use an fp32 VAE or the fp16-fixed one)", err)
	}
	return out, nil
}

// Recycle takes back the buffer of a tensor DecodeLatents returned, once
// the caller is done with it, so that the next decode writes into it.
func (d *Diffuser) Recycle(t sampler.Tensor) {
	if cap(t.Data) == 0 {
		return
	}
	d.decodedMu.Lock()
	defer d.decodedMu.Unlock()
	if len(d.decoded) < maxRecycled {
		d.decoded = append(d.decoded, t.Data[:cap(t.Data)])
	}
}

// decodeBuffer returns a recycled buffer of n values, or nil (the output
// is then allocated) when none is large enough.
func (d *Diffuser) decodeBuffer(n int) []float32 {
	d.decodedMu.Lock()
	defer d.decodedMu.Unlock()
	for i, b := range d.decoded {
		if n > 0 && cap(b) >= n {
			d.decoded = slices.Delete(d.decoded, i, i+1)
			return b[:n]
		}
	}
	return nil
}

// EncodeImage runs the VAE encoder on images in [-1, 1]. Encoders that
// return latent_parameters give the mean and log-variance; older ones that
// return latent_sample give that sample as the mean and no log-variance.
func (d *Diffuser) EncodeImage(ctx context.Context, images sampler.Tensor) (mean, logvar sampler.Tensor, err error) {
	if d.enc == nil {
		return mean, logvar, fmt.Errorf("model folder %s has no vae_encoder/model.onnx, which img2img and from: need; export the model with its VAE encoder (optimum-cli exports it)", d.f.Dir)
	}
	v := d.enc
	is := images.Shape
	if len(is) != 4 || len(images.Data) != numel(is) {
		return mean, logvar, fmt.Errorf("vae encoder: images have shape %v and %d values, want [batch, 3, height, width]", is, len(images.Data))
	}
	f := int64(d.info.VAEFactor)
	if is[2]%f != 0 || is[3]%f != 0 {
		return mean, logvar, fmt.Errorf("vae encoder: image size %dx%d is not a multiple of %d", is[3], is[2], f)
	}
	lc := int64(d.info.LatentChannels)
	params := v.out.Name == "latent_parameters" || v.out.Shape[1] == 2*lc
	c := v.out.Shape[1]
	if c <= 0 {
		c = lc
		if params {
			c = 2 * lc
		}
	}
	out, err := d.runVAE(ctx, v, images, []int64{is[0], c, is[2] / f, is[3] / f}, d.vaeHint(), nil)
	if err != nil {
		return mean, logvar, err
	}
	if !params || out.Shape[1]%2 != 0 {
		return out, sampler.Tensor{}, nil
	}
	return splitChannels(out)
}

// splitChannels splits [B, 2C, H, W] into two [B, C, H, W] halves.
func splitChannels(t sampler.Tensor) (a, b sampler.Tensor, err error) {
	B, C2, H, W := int(t.Shape[0]), int(t.Shape[1]), int(t.Shape[2]), int(t.Shape[3])
	C := C2 / 2
	plane := C * H * W
	a = sampler.Tensor{Shape: []int64{int64(B), int64(C), int64(H), int64(W)}, Data: make([]float32, B*plane)}
	b = sampler.Tensor{Shape: []int64{int64(B), int64(C), int64(H), int64(W)}, Data: make([]float32, B*plane)}
	for i := 0; i < B; i++ {
		copy(a.Data[i*plane:(i+1)*plane], t.Data[i*2*plane:i*2*plane+plane])
		copy(b.Data[i*plane:(i+1)*plane], t.Data[i*2*plane+plane:(i+1)*2*plane])
	}
	return a, b, nil
}

// vaeHint explains the VAE scale factor for shape errors.
func (d *Diffuser) vaeHint() string {
	return fmt.Sprintf("kiln takes the VAE scale factor %d from block_out_channels in the VAE's config.json (2^(entries-1), as diffusers does; 8 without a config), and the graph scales differently: fix the config", d.info.VAEFactor)
}

func (d *Diffuser) runVAE(ctx context.Context, v *vaeGraph, in sampler.Tensor, outShape []int64, hint string, dst []float32) (sampler.Tensor, error) {
	s, err := d.rt.Acquire(ctx, v.spec)
	if err != nil {
		return sampler.Tensor{}, err
	}
	defer s.Release()
	sc := d.scratch.get()
	defer d.scratch.put(sc)
	res, err := run(ctx, s, v.what, sc, map[string]feedValue{v.in.Name: {shape: in.Shape, f32: in.Data}}, []fetch{{name: v.out.Name, shape: outShape, hint: hint, prealloc: true, dst: dst}})
	if err != nil {
		return sampler.Tensor{}, err
	}
	return res[0], nil
}
