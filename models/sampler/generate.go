package sampler

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"time"
)

// Request is one generation: a prompt, its settings, and optionally an
// init image for img2img.
type Request struct {
	Prompt         string
	NegativePrompt string
	// Width and Height of the output, multiples of the model's VAE factor.
	// Zero takes the init image's size, else the model's DefaultSize.
	Width, Height int
	// Steps is the number of inference steps; 0 means 20 (4 for lcm).
	Steps int
	// Guidance is the classifier-free guidance scale. Guidance runs only
	// above 1, and never with the lcm scheduler or for models with a
	// guidance embedding (LCM-distilled UNets), which get it through
	// timestep_cond instead.
	Guidance float64
	// Scheduler names the scheduler (one of SchedulerNames); empty picks the one the model folder was published with.
	Scheduler string
	// Eta is DDIM's noise scale.
	Eta float64
	// Karras overrides the config's use_karras_sigmas when set.
	Karras *bool
	// Spacing overrides the config's timestep_spacing when not empty.
	Spacing string
	// Seed seeds the one generator all random draws come from, in
	// diffusers' order, so a diffusers seed reproduces here.
	Seed uint64
	// Count is the number of images (0 means 1). They share the
	// generator: the initial noise is drawn for the whole batch.
	Count int
	// BatchSize caps how many images one UNet call carries (0: all);
	// smaller batches use less memory and give the same images.
	BatchSize int
	// InitImage turns the request into img2img from this image.
	InitImage image.Image
	// Strength is how far img2img departs from the init image, in
	// (0, 1]; 0 means 0.8, diffusers' default.
	Strength float64
	// InitNoise, when set, is the unit-normal noise the generation starts
	// from, Count × LatentChannels × (Height/VAEFactor) × (Width/VAEFactor)
	// values, used instead of the noise drawn from Seed: txt2img scales it
	// to the first noise level, img2img adds it to the encoded image.
	// Seed still drives every other draw. Flipbook animations pass noises
	// that loop from frame to frame.
	InitNoise []float32
	// Mask, when set, turns img2img into inpainting (see inpaint.go): a
	// gray level per pixel of the init image's size, 255 where the image
	// is redrawn, 0 where it is kept byte for byte, and in between a
	// blend (a feathered edge).
	Mask *image.Gray
	// UseMean starts img2img from the VAE posterior's mean instead of a
	// sample from it (diffusers samples; sampling draws from the
	// generator before the noise does).
	UseMean bool
	// Progress, when set, is called after every step with the number of
	// steps done and the total, counted in model calls: heun's
	// schedule of n steps is 2n-1 calls.
	Progress func(done, total int)
	// Batcher, when set, stacks this generation's UNet calls with those
	// of other generations running at once on the same model (see
	// Batcher); the images are the same either way. It must be a
	// Batcher of the model Generate is given.
	Batcher *Batcher
}

// Report describes what a generation did, for build reports.
type Report struct {
	Scheduler string
	Timesteps []float64
	Width     int
	Height    int
	Seed      uint64
	// Guided reports that classifier-free guidance ran (batch doubling).
	Guided bool
	// Warnings collects the model's warnings, such as truncated prompts.
	Warnings []string
	Provider string
	// UNetCalls counts denoiser calls.
	UNetCalls int
	// Batched is the most generations one of its UNet calls carried
	// through Request.Batcher: 0 or 1 when it ran alone.
	Batched int
	// TextTime, UNetTime, EncodeTime and DecodeTime sum the time spent in
	// the model's calls; Total is the whole generation's wall time.
	TextTime, UNetTime, EncodeTime, DecodeTime, Total time.Duration
}

// ModelTime is the time spent inside the model's calls; Total minus it is
// the sampler's own overhead.
func (r Report) ModelTime() time.Duration {
	return r.TextTime + r.UNetTime + r.EncodeTime + r.DecodeTime
}

// Generate runs one diffusion generation on m and returns the decoded
// images. It is cancelled between steps (and between model calls) by ctx.
// The model must not keep references to the tensors it is given: the
// sampler reuses their buffers from step to step.
func Generate(ctx context.Context, m Model, req Request) ([]*image.NRGBA, Report, error) {
	begin := time.Now()
	info := m.Info()
	rep := Report{Seed: req.Seed, Provider: info.Provider}
	fail := func(err error) ([]*image.NRGBA, Report, error) {
		rep.Total = time.Since(begin)
		return nil, rep, err
	}
	g, err := plan(info, req, req.InitImage != nil)
	if err != nil {
		return fail(err)
	}
	if info.InpaintingUNet && req.Mask == nil {
		return fail(errors.New("the model's UNet is an inpainting UNet, which runs only with a mask: use it for inpaint: assets, or use the model's regular export"))
	}
	if req.Batcher != nil && req.Batcher.m != m {
		return fail(errors.New("the request's batcher belongs to another model"))
	}
	rep.Scheduler, rep.Width, rep.Height = g.sch.Name(), g.width, g.height
	rep.Timesteps = append([]float64(nil), g.sch.Timesteps()...)
	rep.Guided = g.guided
	if err := ctx.Err(); err != nil {
		return fail(err)
	}

	gen := NewGenerator(req.Seed)
	lat := make([]float32, g.count*g.per)
	if req.InitNoise != nil && len(req.InitNoise) != len(lat) {
		return fail(fmt.Errorf("init noise has %d values, want %d (%d images of %dx%dx%d latents)",
			len(req.InitNoise), len(lat), g.count, info.LatentChannels, g.lh, g.lw))
	}
	// Text encoding draws nothing from the generator, so txt2img's
	// starting noise is drawn while the text encoder runs, on a core
	// ONNX Runtime leaves idle when it runs single-threaded. The numbers
	// drawn are the same as after encoding.
	var noiseDrawn chan struct{}
	if req.InitImage == nil && req.InitNoise == nil {
		noiseDrawn = make(chan struct{})
		go func() {
			gen.FillNormal(lat)
			close(noiseDrawn)
		}()
	}

	t0 := time.Now()
	cond, warnings, err := g.encodeText(ctx, m, req)
	rep.TextTime = time.Since(t0)
	rep.Warnings = append(rep.Warnings, warnings...)
	if noiseDrawn != nil {
		<-noiseDrawn
	}
	if err != nil {
		return fail(err)
	}

	var inp *inpainting
	if req.Mask != nil {
		t0 = time.Now()
		inp, err = g.inpaintLatents(ctx, m, req, gen, lat)
		rep.EncodeTime = time.Since(t0)
		if err != nil {
			return fail(err)
		}
	} else if req.InitImage != nil {
		t0 = time.Now()
		err = g.initLatents(ctx, m, req, gen, lat)
		rep.EncodeTime = time.Since(t0)
		if err != nil {
			return fail(err)
		}
	} else {
		if req.InitNoise != nil {
			copy(lat, req.InitNoise)
		}
		k := float32(g.sch.InitNoiseSigma())
		for i := range lat {
			lat[i] *= k
		}
	}

	if err := g.denoise(ctx, m, req, cond, gen, lat, inp, &rep); err != nil {
		return fail(err)
	}

	t0 = time.Now()
	images, err := g.decode(ctx, m, lat)
	rep.DecodeTime = time.Since(t0)
	if err != nil {
		return fail(err)
	}
	if inp != nil {
		inp.composite(images)
	}
	rep.Total = time.Since(begin)
	return images, rep, nil
}

// generation is a validated request: sizes, scheduler, batch layout.
type generation struct {
	info          Info
	sch           *Scheduler
	width, height int
	lh, lw        int // latent size
	per           int // values per image latent
	inPer         int // values per image of the UNet's input (more for an inpainting UNet)
	count, batch  int
	guided        bool
	guidance      float32
}

// plan validates req; img2img says it starts from an init image (which
// EstimateMemory plans without: req.InitImage is then nil).
func plan(info Info, req Request, img2img bool) (*generation, error) {
	if info.LatentChannels < 1 || info.VAEFactor < 1 || !(info.ScalingFactor > 0) {
		return nil, fmt.Errorf("model info is incomplete: latent channels %d, VAE factor %d, scaling factor %g",
			info.LatentChannels, info.VAEFactor, info.ScalingFactor)
	}
	g := &generation{info: info, width: req.Width, height: req.Height}
	if req.InitImage != nil {
		b := req.InitImage.Bounds()
		if g.width == 0 && g.height == 0 {
			g.width, g.height = b.Dx(), b.Dy()
		} else if g.width != b.Dx() || g.height != b.Dy() {
			return nil, fmt.Errorf("init image is %dx%d but the requested size is %dx%d: resize the image or leave the size unset",
				b.Dx(), b.Dy(), g.width, g.height)
		}
	}
	if err := checkMask(req); err != nil {
		return nil, err
	}
	if g.width == 0 && g.height == 0 {
		g.width, g.height = info.DefaultSize, info.DefaultSize
		if g.width == 0 {
			g.width, g.height = 512, 512
		}
	}
	f := info.VAEFactor
	if g.width < f || g.height < f || g.width%f != 0 || g.height%f != 0 {
		return nil, fmt.Errorf("size %dx%d: width and height must be positive multiples of %d (the model's VAE factor)", g.width, g.height, f)
	}
	if g.width > 16384 || g.height > 16384 {
		return nil, fmt.Errorf("size %dx%d exceeds 16384 pixels on a side", g.width, g.height)
	}
	g.lh, g.lw = g.height/f, g.width/f
	g.per = info.LatentChannels * g.lh * g.lw
	g.inPer = g.per
	if info.InpaintingUNet {
		g.inPer = (2*info.LatentChannels + 1) * g.lh * g.lw
	}

	g.count = req.Count
	if g.count == 0 {
		g.count = 1
	}
	if g.count < 0 || g.count > 1024 {
		return nil, fmt.Errorf("count %d out of range: want 1..1024 images", req.Count)
	}
	g.batch = req.BatchSize
	if g.batch <= 0 || g.batch > g.count {
		g.batch = g.count
	}

	name := req.Scheduler
	if name == "" {
		name = DefaultScheduler(info.Scheduler)
	}
	steps := req.Steps
	if steps == 0 {
		steps = 20
		if name == LCM {
			steps = 4
		}
	}
	strength := 1.0
	if img2img {
		strength = req.Strength
		if strength == 0 {
			strength = 0.8
		}
	}
	if math.IsNaN(req.Guidance) || math.IsInf(req.Guidance, 0) {
		return nil, fmt.Errorf("guidance %g is not a number", req.Guidance)
	}
	sch, err := NewScheduler(name, info.Scheduler, SchedulerOptions{Steps: steps, Strength: strength, Eta: req.Eta, Karras: req.Karras, Spacing: req.Spacing})
	if err != nil {
		return nil, err
	}
	g.sch = sch
	// LCM-distilled UNets take guidance as timestep_cond; the LCM
	// scheduler is never run with batch doubling either (its models are
	// distilled with guidance baked in).
	g.guided = req.Guidance > 1 && info.TimestepCondDim == 0 && name != LCM
	g.guidance = float32(req.Guidance)
	return g, nil
}

// textCond is the encoded prompt (row 1) and, under guidance, the negative
// prompt (row 0).
type textCond struct {
	hidden    [2][]float32
	pooled    [2][]float32
	tokens    int64
	dim, pdim int64
	hasPooled bool
}

func (g *generation) encodeText(ctx context.Context, m Model, req Request) (*textCond, []string, error) {
	// SDXL pipelines use zeros, not the encoded empty prompt, as the
	// negative conditioning when no negative prompt is given
	// (force_zeros_for_empty_prompt).
	zeroUncond := g.guided && g.info.SDXL && req.NegativePrompt == ""
	prompts := []string{req.Prompt}
	if g.guided && !zeroUncond {
		prompts = []string{req.NegativePrompt, req.Prompt}
	}
	cond, warnings, err := m.EncodeText(ctx, prompts)
	if err != nil {
		return nil, warnings, fmt.Errorf("encode prompt: %w", err)
	}
	n := int64(len(prompts))
	h := cond.Hidden
	if len(h.Shape) != 3 || h.Shape[0] != n || h.Shape[1] < 1 || h.Shape[2] < 1 || int64(len(h.Data)) != n*h.Shape[1]*h.Shape[2] {
		return nil, warnings, fmt.Errorf("encode prompt: hidden states have shape %v (%d values), want [%d, tokens, dim]", h.Shape, len(h.Data), n)
	}
	tc := &textCond{tokens: h.Shape[1], dim: h.Shape[2]}
	rowLen := int(h.Shape[1] * h.Shape[2])
	tc.hidden[1] = h.Data[int(n-1)*rowLen:]
	if g.guided {
		if zeroUncond {
			tc.hidden[0] = make([]float32, rowLen)
		} else {
			tc.hidden[0] = h.Data[:rowLen]
		}
	}
	if g.info.SDXL {
		p := cond.Pooled
		if len(p.Shape) != 2 || p.Shape[0] != n || p.Shape[1] < 1 || int64(len(p.Data)) != n*p.Shape[1] {
			return nil, warnings, fmt.Errorf("encode prompt: pooled embeddings have shape %v, want [%d, dim] for an SDXL model", p.Shape, n)
		}
		tc.hasPooled, tc.pdim = true, p.Shape[1]
		pl := int(p.Shape[1])
		tc.pooled[1] = p.Data[int(n-1)*pl:]
		if g.guided {
			if zeroUncond {
				tc.pooled[0] = make([]float32, pl)
			} else {
				tc.pooled[0] = p.Data[:pl]
			}
		}
	}
	return tc, warnings, nil
}

// initLatents encodes the init image, samples the posterior (or takes its
// mean), scales it, repeats it for every image and noises it to the first
// step, drawing from gen in diffusers' order.
func (g *generation) initLatents(ctx context.Context, m Model, req Request, gen *Generator, lat []float32) error {
	z, _, err := g.encode(ctx, m, ImageToTensor(req.InitImage), "init image", req.UseMean, gen)
	if err != nil {
		return err
	}
	copy(lat, z)
	for i := 1; i < g.count; i++ {
		copy(lat[i*g.per:(i+1)*g.per], z)
	}
	noise := req.InitNoise
	if noise == nil {
		noise = make([]float32, len(lat))
		gen.FillNormal(noise)
	}
	g.sch.AddNoise(lat, noise)
	return nil
}

// chunkInputs are the per-call tensors for one batch size, built once and
// reused by every step.
type chunkInputs struct {
	cond    Cond
	timeIDs Tensor
	tcond   Tensor
	latents Tensor
}

func (g *generation) inputsFor(c int, tc *textCond, guidance float64, buf []float32) *chunkInputs {
	rows := c
	if g.guided {
		rows = 2 * c
	}
	in := &chunkInputs{}
	hl := int(tc.tokens * tc.dim)
	hidden := make([]float32, rows*hl)
	for r := 0; r < rows; r++ {
		src := tc.hidden[1]
		if g.guided && r < c {
			src = tc.hidden[0]
		}
		copy(hidden[r*hl:(r+1)*hl], src[:hl])
	}
	in.cond.Hidden = Tensor{Shape: []int64{int64(rows), tc.tokens, tc.dim}, Data: hidden}
	if tc.hasPooled {
		pl := int(tc.pdim)
		pooled := make([]float32, rows*pl)
		for r := 0; r < rows; r++ {
			src := tc.pooled[1]
			if g.guided && r < c {
				src = tc.pooled[0]
			}
			copy(pooled[r*pl:(r+1)*pl], src[:pl])
		}
		in.cond.Pooled = Tensor{Shape: []int64{int64(rows), tc.pdim}, Data: pooled}
	}
	if g.info.SDXL {
		// original size, crop top-left, target size; (height, width)
		ids := []float32{float32(g.height), float32(g.width), 0, 0, float32(g.height), float32(g.width)}
		data := make([]float32, 0, rows*6)
		for r := 0; r < rows; r++ {
			data = append(data, ids...)
		}
		in.timeIDs = Tensor{Shape: []int64{int64(rows), 6}, Data: data}
	}
	if d := g.info.TimestepCondDim; d > 0 {
		emb := GuidanceEmbedding(guidance, d)
		data := make([]float32, 0, rows*d)
		for r := 0; r < rows; r++ {
			data = append(data, emb...)
		}
		in.tcond = Tensor{Shape: []int64{int64(rows), int64(d)}, Data: data}
	}
	in.latents = Tensor{
		Shape: []int64{int64(rows), int64(g.inPer / (g.lh * g.lw)), int64(g.lh), int64(g.lw)},
		Data:  buf[:rows*g.inPer],
	}
	return in
}

// denoise runs the step loop over all images, in UNet calls of up to
// g.batch images (doubled under guidance), in place on lat.
// Inpainting (inp not nil) blends the kept region back in after every step.
func (g *generation) denoise(ctx context.Context, m Model, req Request, tc *textCond, gen *Generator, lat []float32, inp *inpainting, rep *Report) error {
	rows := g.batch
	if g.guided {
		rows *= 2
	}
	inBuf := make([]float32, rows*g.inPer)
	outBuf := make([]float32, rows*g.per)
	var pred []float32 // guided predictions when several calls make a step
	inputs := map[int]*chunkInputs{}
	ts := g.sch.Timesteps()
	// A generation joins a batch group when its images take one call per
	// step of at least two rows (see Batcher).
	var member *batchMember
	if b := req.Batcher; b != nil && b.max >= 2 && g.batch == g.count && rows >= 2 && !g.info.InpaintingUNet {
		in := g.inputsFor(g.count, tc, req.Guidance, inBuf)
		inputs[g.count] = in
		member = b.join(UNetInput{Latents: in.latents, Cond: in.cond, TimeIDs: in.timeIDs, TimestepCond: in.tcond}, ts)
		defer func() {
			member.leave(ctx)
			rep.Batched = member.shared
		}()
	}
	unet := m.UNet
	if member != nil {
		unet = member.unet
	}
	for k, t := range ts {
		if err := ctx.Err(); err != nil {
			return err
		}
		scale := float32(g.sch.InputScale(k))
		stepped := false
		for i0 := 0; i0 < g.count; i0 += g.batch {
			c := min(g.batch, g.count-i0)
			in := inputs[c]
			if in == nil {
				in = g.inputsFor(c, tc, req.Guidance, inBuf)
				inputs[c] = in
			}
			src := lat[i0*g.per : (i0+c)*g.per]
			dst := in.latents.Data
			nOut := len(dst) / g.inPer * g.per
			if inp != nil && g.info.InpaintingUNet {
				inp.fillInput(g, dst, src, scale)
			} else if g.guided {
				// Both halves of the batch get the same latents.
				a, b := dst[:len(src)], dst[len(src):2*len(src)]
				for j, v := range src {
					x := v * scale
					a[j], b[j] = x, x
				}
			} else {
				a := dst[:len(src)]
				for j, v := range src {
					a[j] = v * scale
				}
			}
			t0 := time.Now()
			out, err := unet(ctx, UNetInput{
				Latents: in.latents, Timestep: t, Cond: in.cond,
				TimeIDs: in.timeIDs, TimestepCond: in.tcond, Out: outBuf[:nOut],
			})
			rep.UNetTime += time.Since(t0)
			rep.UNetCalls++
			if err != nil {
				return fmt.Errorf("denoise step %d/%d (timestep %g): %w", k+1, len(ts), t, err)
			}
			if len(out.Data) != nOut {
				return fmt.Errorf("denoise step %d/%d: the UNet returned shape %v, want %d rows of %dx%dx%d", k+1, len(ts), out.Shape, nOut/g.per, g.info.LatentChannels, g.lh, g.lw)
			}
			if c == g.count {
				// One call carries every image: the scheduler steps on
				// the output itself, applying guidance as it reads it,
				// without a pass or a buffer of its own.
				n := len(src)
				var cond []float32
				if g.guided {
					cond = out.Data[n : 2*n]
				}
				if err := g.sch.step(k, out.Data[:n], cond, g.guidance, lat, gen); err != nil {
					return err
				}
				stepped = true
				break
			}
			if pred == nil {
				pred = make([]float32, len(lat))
			}
			p := pred[i0*g.per : (i0+c)*g.per]
			if g.guided {
				n := len(src)
				u, cnd := out.Data[:n], out.Data[n:2*n]
				p = p[:n]
				for j, uv := range u {
					p[j] = uv + g.guidance*(cnd[j]-uv)
				}
			} else {
				copy(p, out.Data)
			}
		}
		if !stepped {
			if err := g.sch.Step(k, pred, lat, gen); err != nil {
				return err
			}
		}
		if inp != nil {
			inp.blend(g, k, lat)
		}
		if req.Progress != nil {
			req.Progress(k+1, len(ts))
		}
	}
	return nil
}

// decode unscales the latents and decodes them one image at a time, which
// bounds the VAE's memory and gives the same pixels as a batch.
func (g *generation) decode(ctx context.Context, m Model, lat []float32) ([]*image.NRGBA, error) {
	z := make([]float32, g.per)
	inv := float32(1 / g.info.ScalingFactor)
	shape := []int64{1, int64(g.info.LatentChannels), int64(g.lh), int64(g.lw)}
	images := make([]*image.NRGBA, 0, g.count)
	for i := 0; i < g.count; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for j, v := range lat[i*g.per : (i+1)*g.per] {
			z[j] = v * inv
		}
		out, err := m.DecodeLatents(ctx, Tensor{Shape: shape, Data: z})
		if err != nil {
			return nil, fmt.Errorf("decode image %d: %w", i+1, err)
		}
		want := []int64{1, 3, int64(g.height), int64(g.width)}
		if !sameShape(out.Shape, want) {
			return nil, fmt.Errorf("decode image %d: the VAE decoder returned shape %v, want %v", i+1, out.Shape, want)
		}
		imgs, err := TensorToImages(out)
		if err != nil {
			return nil, fmt.Errorf("decode image %d: %w", i+1, err)
		}
		if r, ok := m.(Recycler); ok {
			r.Recycle(out)
		}
		images = append(images, imgs[0])
	}
	return images, nil
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
