package exemplar

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/kiln-dev/kiln/generators/sampler"
	"github.com/kiln-dev/kiln/models"
	ort "github.com/yalue/onnxruntime_go"
)

// Name is how manifests and kiln.yaml name this model.
const Name = "builtin:exemplar"

// graphVersion changes whenever the graphs buildGraph writes change, so
// graphs cached by an older kiln are not reused.
const graphVersion = "exemplar-els-v1"

// Defaults of Options.
const (
	DefaultBankSize     = 2048
	DefaultDims         = 32
	DefaultExemplarSize = 128
	DefaultSize         = 256
)

// Tiling says which axes of the output wrap around (tile seamlessly).
type Tiling struct {
	X, Y bool
}

// String returns the manifest spelling: "xy", "x", "y" or "none".
func (t Tiling) String() string {
	switch {
	case t.X && t.Y:
		return "xy"
	case t.X:
		return "x"
	case t.Y:
		return "y"
	}
	return "none"
}

// Options configures New.
type Options struct {
	// Prompt chooses built-in exemplars by its keywords (material names
	// and synonyms, colour words, overlays such as "mossy"); see Select.
	// It is read as keywords, not as a sentence: "a wall that is not
	// brick" still means brick.
	Prompt string
	// Exemplars, when not empty, are the images the model draws patches
	// from instead of the built-in library (the manifest's exemplars:,
	// decoded by the caller). The prompt is then not read. They must be
	// at least 15 pixels on each side.
	Exemplars []image.Image
	// ExemplarsTile says the given exemplars tile seamlessly, so patches
	// may wrap around their borders (the built-in exemplars always do).
	ExemplarsTile bool
	// Tile makes the output wrap around along these axes.
	Tile Tiling
	// BankSize is the number of exemplar patches each pixel is compared
	// with; 0 means DefaultBankSize. Time per step grows linearly with it.
	BankSize int
	// Dims bounds the dimension patches are compared in (by projection on
	// their principal directions); 0 means DefaultDims.
	Dims int
	// ExemplarSize is the side of the built-in exemplars; 0 means
	// DefaultExemplarSize.
	ExemplarSize int
	// Seed varies the built-in exemplars and the choice of bank patches.
	// The arrangement of the output follows the sampler's seed, not this.
	Seed uint64
	// Schedule maps noise levels to patch sizes; nil means
	// DefaultPatchSchedule.
	Schedule []PatchLevel
	// CacheDir is where denoiser graphs are written (in an "exemplar"
	// subfolder); "" means models.CacheDir.
	CacheDir string
	// Log receives debug messages; nil discards them.
	Log *slog.Logger
}

// Model is the built-in, training-free diffusion model builtin:exemplar:
// the equivariant local score (ELS) machine of Kamb & Ganguli, "An
// analytic theory of creativity in convolutional diffusion models" (2024),
// run as ONNX graphs on ONNX Runtime. It implements sampler.Model in pixel
// space (no VAE: latents are [-1, 1] RGB images).
//
// The denoiser predicts, for every pixel, the softmax-weighted average of
// the centre pixels of exemplar patches, each weighted by how well it,
// scaled by the signal level, matches the noisy patch around the pixel;
// patches shrink as the noise falls. Because it is local and translation
// equivariant, it makes new arrangements of exemplar patches rather than
// copies of the exemplars, and with wrap-around padding its output tiles.
//
// A Model holds one exemplar set (chosen when it is made, from
// Options.Prompt or Options.Exemplars), so generators make one per asset;
// the prompts the sampler passes to EncodeText do not change it. Graphs are
// built per patch size and image size, cached on disk, and run through the
// Runtime's session pool. A Model is safe for concurrent use.
type Model struct {
	rt       *models.Runtime
	opts     Options
	sel      Selection
	srcs     []source
	images   []*image.NRGBA
	sigmas   sigmaTable
	schedule []PatchLevel
	key      [32]byte
	dir      string
	log      *slog.Logger
	// groups is each source's material and groupNames the materials,
	// when the prompt names several (they are then laid out); nil
	// otherwise.
	groups     []int
	groupNames []string
	layout     []layoutField
	// objects is each source's object when the exemplars are sprites
	// (transparent or a flat colour around one object); nil otherwise.
	objects []objectInfo

	mu     sync.Mutex
	banks  map[bankKey]*bankSlot
	graphs map[graphKey]string
}

type bankSlot struct {
	once sync.Once
	bank *patchBank
	err  error
}

type graphKey struct{ p, down, h, w int }

type bankKey struct{ p, down int }

var _ sampler.Model = (*Model)(nil)

// New makes a Model for one asset: it reads the prompt's keywords (or takes
// the given exemplars), renders the built-in exemplars, and prepares the
// graph cache. Patch banks and graphs are built on first use.
func New(ctx context.Context, rt *models.Runtime, opts Options) (*Model, error) {
	if rt == nil {
		return nil, errors.New(Name + ": no ONNX Runtime given")
	}
	if opts.BankSize == 0 {
		opts.BankSize = DefaultBankSize
	}
	if opts.Dims == 0 {
		opts.Dims = DefaultDims
	}
	if opts.ExemplarSize == 0 {
		opts.ExemplarSize = DefaultExemplarSize
	}
	switch {
	case opts.BankSize < 16 || opts.BankSize > 65536:
		return nil, fmt.Errorf("%s: bank size %d out of range: want 16..65536 patches", Name, opts.BankSize)
	case opts.Dims < 3 || opts.Dims > 1024:
		return nil, fmt.Errorf("%s: dims %d out of range: want 3..1024", Name, opts.Dims)
	case opts.ExemplarSize < 32 || opts.ExemplarSize > 1024:
		return nil, fmt.Errorf("%s: exemplar size %d out of range: want 32..1024 pixels", Name, opts.ExemplarSize)
	}
	sched := opts.Schedule
	if sched == nil {
		sched = DefaultPatchSchedule()
	}
	if err := checkSchedule(sched); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Model{
		rt: rt, opts: opts, sigmas: newSigmaTable(), schedule: sched, log: log,
		banks: map[bankKey]*bankSlot{}, graphs: map[graphKey]string{},
	}
	if len(opts.Exemplars) > 0 {
		var flat []*image.NRGBA
		for i, img := range opts.Exemplars {
			if img == nil {
				return nil, fmt.Errorf("%s: exemplar %d is nil", Name, i+1)
			}
			b := img.Bounds()
			if b.Dx() < 15 || b.Dy() < 15 {
				return nil, fmt.Errorf("%s: exemplar %d is %dx%d pixels: exemplars must be at least 15 pixels on each side", Name, i+1, b.Dx(), b.Dy())
			}
			if b.Dx() > 4096 || b.Dy() > 4096 {
				return nil, fmt.Errorf("%s: exemplar %d is %dx%d pixels: exemplars may be at most 4096 pixels on a side; scale it down", Name, i+1, b.Dx(), b.Dy())
			}
			s := newSource(img, opts.ExemplarsTile)
			m.srcs = append(m.srcs, s)
			m.images = append(m.images, toNRGBA(img))
			if f, o, ok := detectObject(m.images[i]); ok && len(flat) == i {
				flat = append(flat, f)
				m.objects = append(m.objects, o)
			}
		}
		// Sprites make one centred object per frame, when every
		// exemplar is one; their flattened backgrounds never wrap.
		if len(flat) == len(m.images) {
			m.images = flat
			for i, img := range flat {
				m.srcs[i] = newSource(img, false)
			}
			m.log.Debug("exemplars are sprites: one centred object per frame", "exemplars", len(flat))
		} else {
			m.objects = nil
		}
	} else {
		sel, err := Select(opts.Prompt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
		m.sel = sel
		imgs, err := sel.Render(ctx, opts.ExemplarSize, opts.Seed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
		for _, img := range imgs {
			m.srcs = append(m.srcs, newSource(img, true))
		}
		m.images = imgs
		m.groups, m.groupNames = layoutGroups(sel, len(imgs))
		m.layout = newLayout(sel, m.groupNames, opts.Seed)
	}
	m.key = sourcesKey(m.srcs, opts)
	dir := opts.CacheDir
	if dir == "" {
		d, err := models.CacheDir(nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
		dir = d
	}
	m.dir = filepath.Join(dir, "exemplar")
	return m, nil
}

// Selection is what the prompt's keywords chose (empty when the
// exemplars came from Options.Exemplars).
func (m *Model) Selection() Selection { return m.sel }

// Exemplars returns the exemplar images the model draws patches from.
func (m *Model) Exemplars() []*image.NRGBA { return m.images }

// Info describes the model to the sampler: pixel space (3 channels, no
// VAE scaling), Euler with x0 prediction and Karras sigmas.
func (m *Model) Info() sampler.Info {
	return sampler.Info{
		LatentChannels: 3,
		VAEFactor:      1,
		ScalingFactor:  1,
		DefaultSize:    DefaultSize,
		Scheduler:      SchedulerConfig(),
		Provider:       m.rt.Provider(),
	}
}

// EncodeText returns a placeholder conditioning of one token per prompt.
// The model chose its exemplars from Options.Prompt when it was made, so
// the prompts here change nothing, and classifier-free guidance has no
// effect (UNet denoises the doubled batch's identical images once). A
// prompt other than that one or "" is reported in a warning.
func (m *Model) EncodeText(ctx context.Context, prompts []string) (sampler.Cond, []string, error) {
	if err := ctx.Err(); err != nil {
		return sampler.Cond{}, nil, err
	}
	var warnings []string
	if w := unknownWarning(m.opts.Prompt, m.sel.Unknown); w != "" && slices.Contains(prompts, m.opts.Prompt) {
		warnings = append(warnings, w)
	}
	for _, p := range prompts {
		if p != "" && p != m.opts.Prompt {
			warnings = append(warnings, fmt.Sprintf("%s reads its prompt when the model is made (%q); prompt %q has no effect", Name, m.opts.Prompt, p))
		}
	}
	n := int64(len(prompts))
	return sampler.Cond{Hidden: sampler.Tensor{Shape: []int64{n, 1, 1}, Data: make([]float32, n)}}, warnings, nil
}

// UNet predicts the clean images x0 for a batch of noisy ones at the
// sampler's timestep.
func (m *Model) UNet(ctx context.Context, in sampler.UNetInput) (sampler.Tensor, error) {
	s := in.Latents.Shape
	if len(s) != 4 || s[1] != 3 || s[0] < 1 || s[2] < 1 || s[3] < 1 || int64(len(in.Latents.Data)) != s[0]*s[1]*s[2]*s[3] {
		return sampler.Tensor{}, fmt.Errorf("%s: latents have shape %v (%d values), want [batch, 3, height, width]", Name, s, len(in.Latents.Data))
	}
	ab := m.sigmas.alphaBar(in.Timestep)
	out := sampler.Tensor{Shape: append([]int64(nil), s...), Data: make([]float32, len(in.Latents.Data))}
	per := int(s[1] * s[2] * s[3])
rows:
	for i := 0; i < int(s[0]); i++ {
		x := in.Latents.Data[i*per : (i+1)*per]
		// Classifier-free guidance sends every image twice (the
		// conditioning changes nothing here): denoise it once.
		for j := 0; j < i; j++ {
			if slices.Equal(x, in.Latents.Data[j*per:(j+1)*per]) {
				copy(out.Data[i*per:(i+1)*per], out.Data[j*per:(j+1)*per])
				continue rows
			}
		}
		if err := m.Denoise(ctx, out.Data[i*per:(i+1)*per], x, int(s[3]), int(s[2]), ab); err != nil {
			return sampler.Tensor{}, err
		}
	}
	return out, nil
}

// Denoise runs the denoiser on one noisy w×h image x (planar RGB,
// x = sqrt(ᾱ)·x0 + sqrt(1-ᾱ)·ε) at signal level alphaBar and writes the
// predicted x0 into dst. Both have 3·w·h values.
func (m *Model) Denoise(ctx context.Context, dst, x []float32, w, h int, alphaBar float64) error {
	if len(x) != 3*w*h || len(dst) != len(x) {
		return fmt.Errorf("%s: denoise %dx%d: %d values in, %d out, want %d", Name, w, h, len(x), len(dst), 3*w*h)
	}
	if !(alphaBar > 0 && alphaBar <= 1) {
		return fmt.Errorf("%s: signal level ᾱ=%g is outside (0, 1]", Name, alphaBar)
	}
	lv := m.fit(levelFor(m.schedule, alphaBar, w, h))
	path, err := m.graph(ctx, lv, h, w)
	if err != nil {
		return err
	}
	if err := runDenoiser(ctx, m.rt, path, dst, x, w, h, alphaBar); err != nil {
		return fmt.Errorf("%s: denoise %dx%d with %d-pixel patches at 1/%d scale: %w", Name, w, h, lv.Size, lv.Down, err)
	}
	return nil
}

// runDenoiser runs the denoiser graph at path on x through the Runtime's
// session pool, writing x0 into dst.
func runDenoiser(ctx context.Context, rt *models.Runtime, path string, dst, x []float32, w, h int, alphaBar float64) error {
	sess, err := rt.Acquire(ctx, models.SessionSpec{Path: path})
	if err != nil {
		return err
	}
	defer sess.Release()
	xs, err := ort.NewTensor(ort.NewShape(1, 3, int64(h), int64(w)), x)
	if err != nil {
		return fmt.Errorf("input tensor: %w", err)
	}
	defer xs.Destroy()
	abs, err := ort.NewTensor(ort.NewShape(1), []float32{float32(alphaBar)})
	if err != nil {
		return fmt.Errorf("input tensor: %w", err)
	}
	defer abs.Destroy()
	ys, err := ort.NewTensor(ort.NewShape(1, 3, int64(h), int64(w)), dst)
	if err != nil {
		return fmt.Errorf("output tensor: %w", err)
	}
	defer ys.Destroy()
	ins := make([]ort.Value, 0, 2)
	for _, ti := range sess.Inputs() {
		switch ti.Name {
		case InputSample:
			ins = append(ins, xs)
		case InputAlphaBar:
			ins = append(ins, abs)
		default:
			return fmt.Errorf("graph %s has an unexpected input %q: delete it and let kiln rebuild it", path, ti.Name)
		}
	}
	if len(ins) != 2 || len(sess.Outputs()) != 1 {
		return fmt.Errorf("graph %s is not a denoiser graph (inputs %d, outputs %d): delete it and let kiln rebuild it", path, len(sess.Inputs()), len(sess.Outputs()))
	}
	return sess.Run(ctx, ins, []ort.Value{ys})
}

// DecodeLatents returns the latents as they are: the model works on
// images in [-1, 1] directly.
func (m *Model) DecodeLatents(ctx context.Context, latents sampler.Tensor) (sampler.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return sampler.Tensor{}, err
	}
	return sampler.Tensor{Shape: append([]int64(nil), latents.Shape...), Data: append([]float32(nil), latents.Data...)}, nil
}

// EncodeImage returns the images as the latent mean, with no variance
// (img2img then starts exactly from the init image).
func (m *Model) EncodeImage(ctx context.Context, images sampler.Tensor) (mean, logvar sampler.Tensor, err error) {
	if err := ctx.Err(); err != nil {
		return sampler.Tensor{}, sampler.Tensor{}, err
	}
	return sampler.Tensor{Shape: append([]int64(nil), images.Shape...), Data: append([]float32(nil), images.Data...)}, sampler.Tensor{}, nil
}

// Preload builds the banks and graphs for an image size and creates their
// sessions, so the first step does not pay for them.
func (m *Model) Preload(ctx context.Context, w, h int) error {
	seen := map[bankKey]bool{}
	for _, l := range m.schedule {
		ab := 1 / (1 + l.MinSigma*l.MinSigma)
		lv := m.fit(levelFor(m.schedule, ab, w, h))
		if seen[bankKey{lv.Size, lv.Down}] {
			continue
		}
		seen[bankKey{lv.Size, lv.Down}] = true
		path, err := m.graph(ctx, lv, h, w)
		if err != nil {
			return err
		}
		s, err := m.rt.Acquire(ctx, models.SessionSpec{Path: path})
		if err != nil {
			return fmt.Errorf("%s: %w", Name, err)
		}
		s.Release()
	}
	return nil
}

// fit lowers a level's pooling until its patches (Size·Down pixels) fit
// in the largest exemplar, so small reference images still work; the
// comparison then sees less context at that level.
func (m *Model) fit(lv PatchLevel) PatchLevel {
	side := 0
	for _, s := range m.srcs {
		side = max(side, min(s.w, s.h))
	}
	for lv.Down > 1 && lv.Size*lv.Down > side {
		lv.Down /= 2
	}
	return lv
}

// bank returns the patch bank for a schedule level, building it once.
func (m *Model) bank(ctx context.Context, lv PatchLevel) (*patchBank, error) {
	k := bankKey{lv.Size, lv.Down}
	m.mu.Lock()
	slot := m.banks[k]
	if slot == nil {
		slot = &bankSlot{}
		m.banks[k] = slot
	}
	m.mu.Unlock()
	slot.once.Do(func() {
		slot.bank, slot.err = buildBank(ctx, m.srcs, lv.Size, lv.Down, m.opts.BankSize, m.opts.Dims, m.opts.Seed)
	})
	if slot.err != nil {
		// A cancelled build may be retried by a later call.
		if errors.Is(slot.err, context.Canceled) || errors.Is(slot.err, context.DeadlineExceeded) {
			m.mu.Lock()
			if m.banks[k] == slot {
				delete(m.banks, k)
			}
			m.mu.Unlock()
		}
		return nil, fmt.Errorf("%s: patch bank: %w", Name, slot.err)
	}
	return slot.bank, nil
}

// graph returns the path of the denoiser graph for a schedule level on
// h×w images, building and caching it on first use. File names hash
// everything the graph bakes in, so a cached file is always the right one.
func (m *Model) graph(ctx context.Context, lv PatchLevel, h, w int) (string, error) {
	p, down := lv.Size, lv.Down
	k := graphKey{p, down, h, w}
	m.mu.Lock()
	path, ok := m.graphs[k]
	m.mu.Unlock()
	if ok {
		return path, nil
	}
	n := m.opts.BankSize
	chunk := chunkPixels(n, h*w/(down*down))
	hsh := sha256.New()
	hsh.Write(m.key[:])
	fmt.Fprintf(hsh, "\x00p=%d down=%d h=%d w=%d tile=%s chunk=%d", p, down, h, w, m.opts.Tile, chunk)
	// Graphs without a layout or objects keep the names they had.
	switch {
	case m.objects != nil:
		fmt.Fprintf(hsh, " objects=v1 spread=%g", objectSpread)
	case m.groups != nil:
		fmt.Fprintf(hsh, " layout=v1 sharp=%d floor=%d shapes=%v", layoutSharpness, layoutFloor, m.sel.Shapes)
	}
	name := fmt.Sprintf("els-p%d-d%d-%dx%d-%s.onnx", p, down, w, h, hex.EncodeToString(hsh.Sum(nil))[:24])
	path = filepath.Join(m.dir, name)
	if _, err := os.Stat(path); err != nil {
		bk, err := m.bank(ctx, lv)
		if err != nil {
			return "", err
		}
		spec := graphSpec{h: h, w: w, tile: m.opts.Tile, bank: bk, chunk: chunk}
		switch lw, lh := w/bk.down, h/bk.down; {
		case m.objects != nil:
			spec.extra = 3
			spec.extraPx, spec.extraRows = m.objectFeatures(bk, w, h, bk.down, lw, lh)
		case m.groups != nil:
			spec.extra = len(m.groupNames)
			spec.extraPx, spec.extraRows = m.layoutFeatures(bk, w, h, bk.down, lw, lh)
		}
		g, err := buildGraph(spec)
		if err != nil {
			return "", fmt.Errorf("%s: %w", Name, err)
		}
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return "", fmt.Errorf("%s: graph cache: %w (set KILN_CACHE_HOME to a writable folder)", Name, err)
		}
		if err := g.Save(path); err != nil {
			return "", fmt.Errorf("%s: graph cache: %w", Name, err)
		}
		m.log.Debug("built exemplar denoiser graph", "path", path, "patch", p, "down", down, "width", w, "height", h, "bank", n, "dims", bk.d)
	}
	m.mu.Lock()
	m.graphs[k] = path
	m.mu.Unlock()
	return path, nil
}

// sourcesKey hashes the exemplar pixels and every option the banks depend
// on.
func sourcesKey(srcs []source, o Options) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00bank=%d dims=%d seed=%d\x00", graphVersion, o.BankSize, o.Dims, o.Seed)
	for _, s := range srcs {
		fmt.Fprintf(h, "src %dx%d wrap=%v\x00", s.w, s.h, s.wrap)
		buf := make([]byte, 4*len(s.pix))
		for i, v := range s.pix {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		h.Write(buf)
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

func toNRGBA(img image.Image) *image.NRGBA {
	if n, ok := img.(*image.NRGBA); ok {
		return n
	}
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			out.Set(x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}
