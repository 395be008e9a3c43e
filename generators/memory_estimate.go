package generators

import (
	"fmt"
	"image"
	"image/color"
	"path/filepath"

	"github.com/kiln-dev/kiln/generators/sampler"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/exemplar"
)

// The estimates of this file count the Go heap buffers of every stage
// kind in the order the stage allocates them (memLedger), and take the
// memory of the diffusion itself from sampler.EstimateMemory and the
// model's own estimate (exemplar.EstimateMemory, models.Folder's). Sizes
// are in pixels; float images (imageops.Float) take 4 bytes per channel,
// 8-bit RGBA images 4 bytes per pixel.

// Bytes per pixel of the image buffers stages allocate.
const (
	rgbaBytes  = 4  // image.NRGBA
	floatBytes = 16 // imageops.Float with four channels
	// decodeBytes is what decoding an image file whose header was not
	// read allocates besides its NRGBA result (see decoderBytes).
	decodeBytes = 16
	// encoderBytes is what the PNG encoder and its compressor hold.
	encoderBytes = 2 << 20
)

// memLedger adds up a stage's Go heap allocations in the order they
// happen, and the native memory of the models it runs.
type memLedger struct {
	live, peak, churn int64
	native, reserved  int64
}

// alloc records n bytes allocated and kept.
func (l *memLedger) alloc(n int64) {
	l.live += n
	l.peak = max(l.peak, l.live)
}

// free records n bytes dropped.
func (l *memLedger) free(n int64) {
	l.live -= n
	l.churn += n
}

// temp records n bytes allocated and dropped.
func (l *memLedger) temp(n int64) {
	l.alloc(n)
	l.free(n)
}

// call records a call that needs m on top of what is live and keeps
// nothing of it (what it returns is recorded by the caller).
func (l *memLedger) call(m sampler.Memory) {
	l.peak = max(l.peak, l.live+m.Live)
	l.churn += m.Churn
	l.native += m.Native
	l.reserved += m.Reserved
}

// memory is the stage's estimate.
func (l *memLedger) memory() sampler.Memory {
	return sampler.Memory{Live: l.peak, Churn: l.churn, Native: l.native, Reserved: l.reserved}
}

// imageFile is an image file a stage decodes, as its header describes
// it.
type imageFile struct {
	W, H int
	// Temp is what decoding allocates per pixel besides the NRGBA
	// result (decoderBytes).
	Temp int64
}

// size returns the file's size.
func (f imageFile) size() image.Point { return image.Pt(f.W, f.H) }

// at returns the file resized to w×h, decoded alike.
func (f imageFile) at(w, h int) imageFile { return imageFile{W: w, H: h, Temp: f.Temp} }

// decoderBytes is what decoding an image with this header allocates per
// pixel besides its NRGBA result: the decoder's own image before it is
// converted (none for 8-bit RGBA PNGs, which decode to NRGBA; 4 bytes
// for RGB, 8 for 16-bit colour), its rows and inflater (a byte), and for
// JPEG the YCbCr or CMYK planes and a progressive image's coefficients
// (4 bytes per component).
func decoderBytes(cfg image.Config, format string) int64 {
	if format == "jpeg" {
		return 16
	}
	switch cfg.ColorModel {
	case color.NRGBAModel:
		return 1
	case color.RGBAModel:
		return 5
	case color.GrayModel:
		return 2
	case color.Gray16Model:
		return 3
	case color.NRGBA64Model, color.RGBA64Model:
		return 9
	}
	if _, ok := cfg.ColorModel.(color.Palette); ok {
		return 2
	}
	return decodeBytes
}

// decode records decoding an image file into an NRGBA image, which is
// kept.
func (l *memLedger) decode(f imageFile) {
	p := pixels(f.W, f.H)
	l.alloc(rgbaBytes * p)
	l.temp(f.Temp * p)
}

// encode records writing a w×h image as PNG (streamed to the output:
// the encoder holds a few rows and its compressor).
func (l *memLedger) encode(w int) {
	l.temp(6*(8*int64(w)+1) + encoderBytes)
}

func pixels(w, h int) int64 { return int64(max(w, 0)) * int64(max(h, 0)) }

// modelMemory is what a generation's estimate needs from its model: the
// model's description for the sampler, and what it adds for a w×h
// generation whose UNet calls carry rows images.
type modelMemory struct {
	info  sampler.Info
	model func(w, h, rows int, img2img bool) sampler.ModelMemory
	// resident, when not nil, returns the graph files whose loaded
	// sessions already hold the working memory of a w×h generation
	// (nil when they are not all loaded): model then leaves that memory
	// out, and the sessions must be kept.
	resident func(w, h int) []string
	// batched says the model may stack the generation's UNet calls with
	// others' (runtime.batch; see sampler.MemoryQuery.Batched).
	batched bool
}

// memoryQuery says which model a generation opens (see OpenOptions).
type memoryQuery struct {
	// exemplars are the sizes of the manifest's exemplar images.
	exemplars []image.Point
	prompt    string
	seed      uint64
	tile      manifests.Tile
}

// memoryModels is implemented by model sets that can estimate their
// models' memory (NewModelSet's).
type memoryModels interface {
	modelMemory(name string, q memoryQuery) (modelMemory, error)
}

// exemplarMemory is builtin:exemplar's modelMemory.
func exemplarMemory(exemplars []image.Point, threads int) modelMemory {
	return modelMemory{
		info: sampler.Info{LatentChannels: 3, VAEFactor: 1, ScalingFactor: 1, DefaultSize: exemplar.DefaultSize, Scheduler: exemplar.SchedulerConfig()},
		model: func(w, h, rows int, _ bool) sampler.ModelMemory {
			return exemplar.EstimateMemory(w, h, exemplar.MemoryOptions{Exemplars: exemplars, Rows: rows, Threads: threads})
		},
	}
}

// modelMemory implements memoryModels.
func (s *modelStore) modelMemory(name string, q memoryQuery) (modelMemory, error) {
	m, err := s.def(name)
	if err != nil {
		return modelMemory{}, err
	}
	if m.Builtin != "" {
		mm := exemplarMemory(q.exemplars, s.rtOpts.Threads)
		if len(q.exemplars) == 0 {
			s.residentExemplar(&mm, q)
		}
		return mm, nil
	}
	e, err := s.entry(m)
	if err != nil {
		return modelMemory{}, err
	}
	e.mu.Lock()
	f := e.folder
	e.mu.Unlock()
	info := sampler.Info{LatentChannels: 4, VAEFactor: f.VAEFactor, ScalingFactor: f.ScalingFactor, Scheduler: f.Scheduler, SDXL: f.SDXL}
	if c, ok := f.UNetConfig["in_channels"].(float64); ok && c >= 1 {
		info.LatentChannels = int(c)
	}
	if c, ok := f.UNetConfig["time_cond_proj_dim"].(float64); ok && c >= 1 {
		info.TimestepCondDim = int(c)
	}
	threads := s.rtOpts.Threads
	s.mu.Lock()
	batched := s.batch >= 2
	s.mu.Unlock()
	return modelMemory{info: info, batched: batched, model: func(w, h, rows int, img2img bool) sampler.ModelMemory {
		return f.EstimateMemory(w, h, models.FolderMemoryOptions{Rows: rows, Img2Img: img2img, Threads: threads})
	}}, nil
}

// residentExemplar makes mm leave out the ONNX Runtime memory of the
// builtin:exemplar model q opens when that model has already generated
// at the size and its sessions are still loaded: a flipbook's frames and
// a concept's variations run the same graphs one after the other.
func (s *modelStore) residentExemplar(mm *modelMemory, q memoryQuery) {
	axes, err := tileAxes(q.tile)
	if err != nil {
		return
	}
	key := exemplarKey(OpenOptions{Prompt: q.prompt, Seed: q.seed}, axes)
	s.exMu.Lock()
	var em *exemplar.Model
	for _, x := range s.exemplars {
		if x.key == key {
			em = x.made.Load() // nil until made
			break
		}
	}
	s.exMu.Unlock()
	s.rtMu.Lock()
	rt := s.rt
	s.rtMu.Unlock()
	if em == nil || rt == nil {
		return
	}
	mm.resident = func(w, h int) []string {
		paths := em.GraphPaths(w, h)
		if len(paths) == 0 {
			return nil
		}
		loaded := map[string]bool{}
		for _, k := range rt.PooledSessions() {
			loaded[k.Path] = true
		}
		for i, p := range paths {
			abs, err := filepath.Abs(p)
			if err != nil || !loaded[abs] {
				return nil
			}
			paths[i] = abs
		}
		return paths
	}
	model := mm.model
	mm.model = func(w, h, rows int, img2img bool) sampler.ModelMemory {
		m := model(w, h, rows, img2img)
		if mm.resident(w, h) != nil {
			m.Native, m.Reserved = 0, 0
		}
		return m
	}
}

// modelMemory implements memoryModels for the models the planner found
// usable; the others fail when opened.
func (b *brokenModels) modelMemory(name string, q memoryQuery) (modelMemory, error) {
	if err := b.errs[name]; err != nil {
		return modelMemory{}, err
	}
	return memoryOf(b.ModelSet, name, q)
}

// memoryOf returns what a model set says about a model's memory; for
// model sets that cannot say, the sampler's buffers with nothing added
// (builtin:exemplar's own estimate for a model of that family).
func memoryOf(ms ModelSet, name string, q memoryQuery) (modelMemory, error) {
	if mm, ok := ms.(memoryModels); ok {
		return mm.modelMemory(name, q)
	}
	info, err := ms.Describe(name)
	if err != nil {
		return modelMemory{}, err
	}
	if info.Family == familyExemplar {
		return exemplarMemory(q.exemplars, 0), nil
	}
	return modelMemory{
		info:  sampler.Info{LatentChannels: 4, VAEFactor: max(info.VAEFactor, 1), ScalingFactor: 1},
		model: func(int, int, int, bool) sampler.ModelMemory { return sampler.ModelMemory{} },
	}, nil
}

// generationMemory estimates a generation stage at w×h: decoding its
// exemplars and init image (init is the init image's size, zero for
// txt2img), fitting the init image to the size, the generation, the
// seamless shift of a tiled image, and writing the PNG.
func generationMemory(p *genParams, w, h int, mm modelMemory, exemplars []imageFile, init imageFile) (sampler.Memory, error) {
	var l memLedger
	for _, e := range exemplars {
		l.decode(e)
	}
	px := pixels(w, h)
	img2img := init != (imageFile{})
	if img2img {
		l.decode(init)
		if init.W != w || init.H != h {
			// imageops.FromImage, the premultiplied copy, the
			// horizontal pass and the result, then the result as NRGBA.
			sp := pixels(init.W, init.H)
			l.temp(2*floatBytes*sp + floatBytes*pixels(w, init.H) + floatBytes*px)
			l.alloc(rgbaBytes * px)
			l.free(rgbaBytes * sp)
		}
		if p.Strength <= 0 {
			// The init image is the result.
			l.temp((floatBytes + rgbaBytes) * px)
			l.encode(w)
			return l.memory(), nil
		}
	}
	req := sampler.Request{Width: w, Height: h, Steps: p.Steps, Guidance: p.Guidance, Scheduler: p.Scheduler, Strength: p.Strength}
	if fb := p.Flipbook; fb != nil {
		// exemplar.FlipbookFrame: three noises and the frame's.
		per := int64(mm.info.LatentChannels) * px / int64(max(mm.info.VAEFactor, 1)*max(mm.info.VAEFactor, 1)) * 4
		l.temp(3 * per)
		l.alloc(per)
		req.InitNoise = []float32{}
	}
	gm, err := sampler.EstimateMemory(mm.info, sampler.MemoryQuery{Request: req, Img2Img: img2img, Batched: mm.batched,
		Model: func(rows int) sampler.ModelMemory { return mm.model(w, h, rows, img2img) }})
	if err != nil {
		return sampler.Memory{}, fmt.Errorf("estimate the memory of %dx%d: %w", w, h, err)
	}
	l.call(gm)
	l.alloc(rgbaBytes * px) // the image Generate returns
	if p.Tile != "" {
		// exemplar.Roll makes a shifted copy; the seam note converts it.
		l.alloc(rgbaBytes * px)
		l.free(rgbaBytes * px)
		l.temp(floatBytes * px)
	}
	l.encode(w)
	return l.memory(), nil
}

// deriveMemory estimates a texture's derive stage on a w×h albedo, as
// imageops.DerivePBR computes every map whichever are written: the albedo
// decoded and as a float image, each map's intermediates (luminance,
// blurs, the squared luminance, the AO accumulator), the maps kept for
// the ORM pack, and each map converted and written in turn.
func deriveMemory(albedo imageFile, metallicMap bool) sampler.Memory {
	var l memLedger
	w := albedo.W
	p := pixels(albedo.W, albedo.H)
	gray := 4 * p // a one-channel float image
	l.decode(albedo)
	l.alloc(floatBytes * p) // the albedo as a float image
	if metallicMap {
		l.alloc(gray)
	}
	// Height: luminance, blurred (a copy and a scratch image).
	l.alloc(gray)
	l.temp(2 * gray)
	// Normal: three channels.
	l.alloc(3 * gray)
	// Roughness: luminance (kept), its square, two blurs with scratch.
	l.alloc(gray)
	l.temp(4 * gray)
	// AO: accumulator and a blur with scratch, then the map.
	l.alloc(gray)
	l.temp(3 * gray)
	// Metallic, then ORM (three channels).
	l.alloc(gray)
	l.alloc(3 * gray)
	// The largest converted map: an NRGBA normal or ORM map.
	l.temp(rgbaBytes * p)
	l.encode(w)
	return l.memory()
}

// sheetMemory estimates a sprite-sheet's sheet stage: n frames generated
// at gw×gh, each decoded, keyed (or reduced to RGB), pixelated or resized
// to fw×fh and kept, the palette, the grid sheet of cols×rows frames as a
// float and an NRGBA image, and every frame and the sheet written.
func sheetMemory(n int, gen imageFile, fw, fh, cols, rows int, keyed, palette bool) sampler.Memory {
	var l memLedger
	gw, gh := gen.W, gen.H
	g, f := pixels(gw, gh), pixels(fw, fh)
	frame := floatBytes * f
	for i := 0; i < n; i++ {
		l.decode(gen)
		l.alloc(floatBytes * g) // as a float image
		if keyed {
			// imageops.ChromaKey: alpha, backdrop, band, its blur with
			// scratch, refined alpha, the keyed image.
			l.temp(4*g + 4*g + g + 8*g + 4*g + floatBytes*g)
		} else {
			l.temp(12 * g)
		}
		// Resizing to the frame size: premultiplied copy, horizontal
		// pass, result.
		l.temp(floatBytes*g + floatBytes*pixels(fw, gh) + frame)
		l.alloc(frame)
		l.free(floatBytes*g + rgbaBytes*g)
	}
	sheet := pixels(cols*fw, rows*fh)
	if palette {
		// The whole animation as one sheet for median cut, its colour
		// histogram, then every frame quantised anew.
		l.temp(floatBytes*sheet + 24*sheet)
		l.alloc(int64(n) * frame)
		l.free(int64(n) * frame)
	}
	l.alloc(floatBytes * sheet)
	l.temp(rgbaBytes * f)
	l.encode(fw)
	l.temp(rgbaBytes * sheet)
	l.encode(cols * fw)
	return l.memory()
}

// contactMemory estimates a concept-art contact stage: each of n
// variations of w×h decoded, as a float image, and shrunk to a thumbnail
// of at most thumb pixels on a side (kept), then the sheet.
func contactMemory(n int, v imageFile, thumb int) sampler.Memory {
	var l memLedger
	w, h := v.W, v.H
	p := pixels(w, h)
	tw, th := w, h
	if s := max(w, h); s > thumb {
		tw, th = max(1, w*thumb/s), max(1, h*thumb/s)
	}
	t := pixels(tw, th)
	for i := 0; i < n; i++ {
		l.decode(v)
		l.alloc(floatBytes * p)
		l.temp(floatBytes*p + floatBytes*pixels(tw, h) + floatBytes*t)
		l.alloc(floatBytes * t)
		l.free(floatBytes*p + rgbaBytes*p)
	}
	cols := 1
	for cols*cols < n {
		cols++
	}
	rows := (n + cols - 1) / cols
	sheet := int64(cols*(tw+8)+8) * int64(rows*(th+40)+8)
	l.temp(int64(n)*rgbaBytes*t + rgbaBytes*sheet)
	l.encode(cols * (tw + 8))
	return l.memory()
}

// sourceMemory estimates an image stage: the file decoded and written
// again.
func sourceMemory(f imageFile) sampler.Memory {
	var l memLedger
	l.decode(f)
	l.encode(f.W)
	return l.memory()
}
