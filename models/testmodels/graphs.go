package testmodels

import (
	"fmt"
	"hash/fnv"
	"math"
	"path/filepath"

	"github.com/kiln-dev/kiln/models/onnx"
)

// Network sizes. Small enough that a 512×512 generation step runs in
// milliseconds on a CPU, large enough that every operator kind a real
// export uses on the hot path appears.
const (
	unetChannels = 32   // UNet feature width
	vocabRows    = 1024 // embedding rows; token ids are taken modulo this
	textLayers   = 2    // "transformer" layers in the text encoders
	timeFreqs    = 16   // sinusoidal timestep frequencies (sin and cos each)
)

// rng is splitmix64: tiny, deterministic on every platform and Go version.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a value in [-1, 1).
func (r *rng) uniform() float32 {
	return float32(r.next()>>40)/float32(1<<23) - 1
}

// netBuilder wraps onnx.Builder with seeded weights and the flavour's
// float type at the graph boundary.
type netBuilder struct {
	*onnx.Builder
	seed  uint64
	scope string
	float onnx.DataType
}

func newNet(name string, spec Spec, seed uint64) *netBuilder {
	b := onnx.NewBuilder(name)
	b.WeightType = spec.Float
	return &netBuilder{Builder: b, seed: seed, scope: name, float: spec.Float}
}

// weight adds a weight named name with values uniform in ±bound, seeded by
// the model seed, the graph and the weight's name (so adding a weight does
// not change the others).
func (n *netBuilder) weight(name string, bound float32, dims ...int64) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s", n.scope, name)
	r := &rng{s: n.seed ^ h.Sum64()}
	count := int64(1)
	for _, d := range dims {
		count *= d
	}
	data := make([]float32, count)
	for i := range data {
		data[i] = bound * r.uniform()
	}
	return n.Weight(name, dims, data)
}

// constant adds a float constant stored in the flavour's float type.
func (n *netBuilder) constant(name string, dims []int64, data ...float32) string {
	return n.Weight(name, dims, data)
}

func (n *netBuilder) scalar(name string, v float32) string { return n.constant(name, nil, v) }

// conv adds a k×k convolution with "same" padding and Kaiming-uniform
// weights.
func (n *netBuilder) conv(name, x string, in, out, k, stride int64) string {
	bound := float32(math.Sqrt(3 / float64(in*k*k)))
	w := n.weight(name+".weight", bound, out, in, k, k)
	bias := n.weight(name+".bias", 0.1, out)
	o := onnx.ConvOpts{}
	if k > 1 {
		p := k / 2
		o.Pads = []int64{p, p, p, p}
	}
	if stride > 1 {
		o.Strides = []int64{stride, stride}
	}
	return n.Conv(x, w, bias, o)
}

// linear adds x @ W + b with W [in, out].
func (n *netBuilder) linear(name, x string, in, out int64) string {
	w := n.weight(name+".weight", float32(math.Sqrt(3/float64(in))), in, out)
	b := n.weight(name+".bias", 0.1, out)
	return n.Add(n.MatMul(x, w), b)
}

// in converts a graph input from the flavour's float type to float32.
func (n *netBuilder) in(x string) string {
	if n.float == onnx.Float {
		return x
	}
	return n.Cast(x, onnx.Float)
}

// out declares a float output, converting from float32.
func (n *netBuilder) out(x string, io IO) {
	if io.Type != onnx.Float {
		x = n.Cast(x, io.Type)
	}
	n.Output(x, io.Name, io.Type, io.Shape...)
}

func (n *netBuilder) input(io IO) string { return n.Input(io.Name, io.Type, io.Shape...) }

// model finishes the graph.
func (n *netBuilder) model() (*onnx.Model, error) {
	m, err := n.Model()
	if err != nil {
		return nil, err
	}
	m.ProducerName = "kiln testmodels"
	return m, nil
}

// textEncoder builds a CLIP-like text encoder: token embedding (ids modulo
// vocabRows) plus position embedding, textLayers residual mixing layers,
// final layer norm, pooled output at the end-of-text token (the largest
// id, as CLIP takes argmax), and for SDXL's second encoder a projection.
func textEncoder(spec Spec, c *Component, seed uint64, dim int64) (*onnx.Model, error) {
	n := newNet(c.Dir, spec, seed)
	D := dim
	ids := n.input(c.Inputs[0])

	rows := onnx.NewInt32Tensor("vocab_rows", nil, []int32{vocabRows})
	if c.Inputs[0].Type == onnx.Int64 {
		rows = onnx.NewInt64Tensor("vocab_rows", nil, []int64{vocabRows})
	}
	idx := n.Mod(ids, n.Initializer(rows))
	tok := n.Gather(n.weight("embeddings.token_embedding.weight", 1, vocabRows, D), idx, 0)
	seqEnd := n.Slice(n.Shape(ids), []int64{1}, []int64{2}, nil, nil)
	pos := n.Op("Slice", []string{n.weight("embeddings.position_embedding.weight", 0.5, seqLen, D), n.Int64s(0), seqEnd, n.Int64s(0)})
	h := n.Add(tok, pos)
	hidden := []string{h}
	for l := 0; l < textLayers; l++ {
		p := fmt.Sprintf("encoder.layers.%d", l)
		mix := n.ReduceMean(h, true, 1) // a token sees the whole prompt
		u := n.Tanh(n.linear(p+".mlp", n.Add(h, mix), D, D))
		h = n.Add(h, n.Mul(u, n.scalar(p+".scale", 0.5)))
		hidden = append(hidden, h)
	}
	last := n.LayerNorm(h, n.constant("final_layer_norm.weight", []int64{D}, ones(D)...), n.constant("final_layer_norm.bias", []int64{D}, make([]float32, D)...), -1, 1e-5)

	eos := n.ArgMax(n.Cast(ids, onnx.Float), 1, true) // [B,1]
	gidx := n.Expand(n.Unsqueeze(eos, 2), n.Int64s(1, 1, D))
	pooled := n.Squeeze(n.GatherElements(last, gidx, 1), 1) // [B,D]

	for _, o := range c.Outputs {
		switch o.Name {
		case "last_hidden_state":
			n.out(last, o)
		case "pooler_output":
			n.out(pooled, o)
		case "text_embeds":
			w := n.weight("text_projection.weight", float32(math.Sqrt(3/float64(D))), D, int64(spec.TextEmbedsDim))
			n.out(n.MatMul(pooled, w), o)
		default:
			var i int
			if _, err := fmt.Sscanf(o.Name, "hidden_states.%d", &i); err != nil || i >= len(hidden) {
				return nil, fmt.Errorf("text encoder: unexpected output %q", o.Name)
			}
			n.out(n.Identity(hidden[i]), o)
		}
	}
	return n.model()
}

func ones(n int64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// unet builds a small conditional UNet: sinusoidal timestep embedding and
// the extra conditioning of SDXL and LCM added to it, a convolution at full
// resolution, a stride-2 convolution, single-head cross-attention over the
// text at half resolution, nearest upsampling back with a skip connection,
// and a tanh-bounded output.
func unet(spec Spec, c *Component, seed uint64) (*onnx.Model, error) {
	n := newNet(c.Dir, spec, seed)
	const C = unetChannels
	cross := int64(spec.TextDim + spec.Text2Dim)
	inputs := map[string]string{}
	for _, io := range c.Inputs {
		inputs[io.Name] = n.input(io)
	}
	x := n.in(inputs["sample"])
	ehs := n.in(inputs["encoder_hidden_states"])

	// Timestep embedding: t [B] or [] -> [B,1] or [1,1] -> sin/cos.
	tsIO := c.Inputs[1]
	t := inputs["timestep"]
	if tsIO.Type != onnx.Float {
		t = n.Cast(t, onnx.Float)
	}
	if len(tsIO.Shape) == 0 {
		t = n.Reshape(t, 1, 1)
	} else {
		t = n.Unsqueeze(t, 1)
	}
	freqs := make([]float32, timeFreqs)
	for i := range freqs {
		freqs[i] = float32(math.Exp(-math.Log(10000) * float64(i) / timeFreqs))
	}
	arg := n.Mul(t, n.constant("time_proj.freqs", []int64{1, timeFreqs}, freqs...))
	temb := n.Concat(1, n.Sin(arg), n.Cos(arg))
	emb := n.SiLU(n.linear("time_embedding.linear_1", temb, 2*timeFreqs, C))
	emb = n.linear("time_embedding.linear_2", emb, C, C)

	if spec.TextEmbedsDim > 0 {
		te := n.in(inputs["text_embeds"])
		ids := n.Mul(n.in(inputs["time_ids"]), n.scalar("add_time_scale", 1.0/1024))
		add := n.Add(n.linear("add_embedding.text", te, int64(spec.TextEmbedsDim), C), n.linear("add_embedding.time", ids, 6, C))
		emb = n.Add(emb, n.Tanh(add))
	}
	if spec.TimeCondDim > 0 {
		tc := n.in(inputs["timestep_cond"])
		emb = n.Add(emb, n.Tanh(n.linear("time_embedding.cond_proj", tc, int64(spec.TimeCondDim), C)))
	}
	// Pooled text conditioning, so the output depends on the prompt even
	// where attention is flat.
	ctx := n.linear("text_pool", n.ReduceMean(ehs, false, 1), cross, C)
	emb = n.Add(emb, ctx)
	emb = n.Unsqueeze(n.SiLU(emb), 2, 3) // [B,C,1,1]

	h1 := n.SiLU(n.Add(n.conv("conv_in", x, int64(spec.UNetInChannels), C, 3, 1), emb))
	h2 := n.SiLU(n.conv("down.conv", h1, C, C, 3, 2))

	// Cross-attention at half resolution.
	seq := n.Transpose(n.Reshape(h2, 0, C, -1), 0, 2, 1) // [B,N,C]
	q := n.linear("attn.to_q", seq, C, C)
	k := n.linear("attn.to_k", ehs, cross, C)
	v := n.linear("attn.to_v", ehs, cross, C)
	scores := n.Mul(n.MatMul(q, n.Transpose(k, 0, 2, 1)), n.scalar("attn.scale", float32(1/math.Sqrt(C))))
	att := n.MatMul(n.Softmax(scores, -1), v) // [B,N,C]
	att = n.linear("attn.to_out", att, C, C)
	att = n.ReshapeTo(n.Transpose(att, 0, 2, 1), n.Shape(h2))
	h3 := n.SiLU(n.conv("mid.conv", n.Add(h2, att), C, C, 3, 1))

	up := n.ResizeTo(h3, n.Shape(h1), "nearest")
	h4 := n.SiLU(n.conv("up.conv", n.Concat(1, up, h1), 2*C, C, 3, 1))
	out := n.Tanh(n.conv("conv_out", h4, C, latentChannels, 3, 1))
	n.out(out, c.Outputs[0])
	return n.model()
}

// vaeDecoder maps latents [B,4,h,w] to images [B,3,8h,8w] in [-1,1]: a 1×1
// post-quantisation convolution, a 3×3 input convolution, three nearest ×2
// upsamplings (the first two followed by 3×3 convolutions, as the real
// decoder's up blocks), and a 3×3 output convolution at full resolution.
func vaeDecoder(spec Spec, c *Component, seed uint64) (*onnx.Model, error) {
	n := newNet(c.Dir, spec, seed)
	z := n.in(n.input(c.Inputs[0]))
	h := n.conv("post_quant_conv", z, latentChannels, latentChannels, 1, 1)
	h = n.SiLU(n.conv("decoder.conv_in", h, latentChannels, 16, 3, 1))
	chans := []int64{16, 16, 8}
	for i := 0; i < 2; i++ {
		h = n.Resize(h, "nearest", 1, 1, 2, 2)
		h = n.SiLU(n.conv(fmt.Sprintf("decoder.up_blocks.%d.conv", i), h, chans[i], chans[i+1], 3, 1))
	}
	h = n.Resize(h, "nearest", 1, 1, 2, 2)
	out := n.Tanh(n.conv("decoder.conv_out", h, chans[2], 3, 3, 1))
	n.out(out, c.Outputs[0])
	return n.model()
}

// vaeEncoder maps images [B,3,H,W] to latents at 1/8 size with three
// stride-2 convolutions. Optimum exports return the distribution's
// parameters (mean and log-variance, 8 channels); older exports return a
// 4-channel latent (here the mean).
func vaeEncoder(spec Spec, c *Component, seed uint64) (*onnx.Model, error) {
	n := newNet(c.Dir, spec, seed)
	x := n.in(n.input(c.Inputs[0]))
	h := n.SiLU(n.conv("encoder.down.0", x, 3, 8, 3, 2))
	h = n.SiLU(n.conv("encoder.down.1", h, 8, 16, 3, 2))
	h = n.SiLU(n.conv("encoder.down.2", h, 16, 16, 3, 2))
	moments := n.conv("quant_conv", n.conv("encoder.conv_out", h, 16, 2*latentChannels, 3, 1), 2*latentChannels, 2*latentChannels, 1, 1)
	parts := n.Split(moments, 1, latentChannels, latentChannels)
	mean := n.Mul(n.Tanh(parts[0]), n.scalar("mean_scale", 3))
	o := c.Outputs[0]
	if o.Name == "latent_sample" {
		n.out(mean, o)
		return n.model()
	}
	logvar := n.Add(n.Mul(n.Tanh(parts[1]), n.scalar("logvar_scale", 2)), n.scalar("logvar_shift", -4))
	n.out(n.Concat(1, mean, logvar), o)
	return n.model()
}

// writeGraphs builds and saves every component's model.onnx.
func (g *generator) writeGraphs() error {
	for i := range g.spec.Components {
		c := &g.spec.Components[i]
		var m *onnx.Model
		var err error
		switch c.Dir {
		case "text_encoder":
			m, err = textEncoder(g.spec, c, g.opts.Seed, int64(g.spec.TextDim))
		case "text_encoder_2":
			m, err = textEncoder(g.spec, c, g.opts.Seed, int64(g.spec.Text2Dim))
		case "unet":
			m, err = unet(g.spec, c, g.opts.Seed)
		case "vae_decoder":
			m, err = vaeDecoder(g.spec, c, g.opts.Seed)
		case "vae_encoder":
			m, err = vaeEncoder(g.spec, c, g.opts.Seed)
		default:
			err = fmt.Errorf("no graph for component %q", c.Dir)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.Dir, err)
		}
		if err := g.mkdir(c.Dir); err != nil {
			return err
		}
		path := filepath.Join(g.dir, c.Dir, "model.onnx")
		if c.ExternalData != "" {
			err = m.SaveExternal(path, onnx.ExternalOptions{File: c.ExternalData, MinSize: 1024})
		} else {
			err = m.Save(path)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
