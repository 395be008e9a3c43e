package generators

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/exemplar"
	"github.com/kiln-dev/kiln/models/lora"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/models/tiling"
)

// ModelSet gives stages the models a project names. Plan asks it only the
// cheap questions (Describe, Fingerprint), so planning a project never
// loads ONNX Runtime; stages call Open when they run. A ModelSet lives as
// long as the process (watch mode plans and builds many times with one),
// so models stay loaded across stages and rebuilds. Implementations are
// safe for concurrent use.
type ModelSet interface {
	// Describe returns what planning needs to know about a model: its
	// VAE factor and defaults. It must be cheap (no ONNX Runtime). An
	// unknown name is an error wrapping ErrUnknownModel.
	Describe(name string) (ModelInfo, error)
	// Fingerprint identifies the model's content for cache keys. It must
	// be cheap when nothing changed (folder fingerprints are cached by
	// modification time; built-in models return a constant version).
	Fingerprint(name string) (string, error)
	// Open returns the model ready to sample, and a function to call when
	// the stage is done with it.
	Open(ctx context.Context, name string, o OpenOptions) (sampler.Model, func(), error)
	// Close releases every loaded model and the runtime.
	Close() error
}

// ErrUnknownModel is wrapped by ModelSet errors for names the set does not
// know.
var ErrUnknownModel = errors.New("unknown model")

// ModelInfo is what Plan needs to know about a model to resolve an asset's
// parameters without loading it.
type ModelInfo struct {
	// Name is the name manifests use ("sd15", "builtin:exemplar").
	Name string
	// Family is sd15, sd2, sdxl, lcm or turbo for model folders (from
	// kiln.yaml's kind, else guessed from the folder), "exemplar" for the
	// built-in model.
	Family string
	// VAEFactor is the model's spatial down-scaling: image sizes must be
	// multiples of it.
	VAEFactor int
	// DefaultSize is the square size used when an asset sets none: 1024
	// for SDXL, 512 for others (or what the UNet config says), the
	// built-in model's own default.
	DefaultSize int
	// Steps, Guidance and Scheduler are the model's defaults for assets
	// that set none.
	Steps     int
	Guidance  float64
	Scheduler string
}

// OpenOptions say which variant of a model a stage needs.
type OpenOptions struct {
	// Tile makes the model paint seamless images along these axes: the
	// circular-padding variant of a model folder's graphs, or the
	// built-in model's wrap-around mode.
	Tile manifests.Tile
	// Prompt is the asset's prompt, for models that choose what they
	// draw when they are made (builtin:exemplar reads its keywords).
	Prompt string
	// Seed varies a built-in model's exemplars.
	Seed uint64
	// Exemplars are the images builtin:exemplar draws from instead of its
	// built-in library (the manifest's exemplars:).
	Exemplars []image.Image
	// LoRAs are merged into a model folder's weights, in order (see
	// models.DiffuserOptions.LoRAs).
	LoRAs []lora.Weighted
}

// Model families.
const (
	familySD15     = "sd15"
	familySD2      = "sd2"
	familySDXL     = "sdxl"
	familyLCM      = "lcm"
	familyTurbo    = "turbo"
	familyExemplar = "exemplar"
)

// exemplarFingerprint is builtin:exemplar's fingerprint. It changes
// whenever the built-in model would paint different pixels for the same
// request.
const exemplarFingerprint = exemplar.Name + "@3"

// NewModelSet returns the ModelSet of a project: each name under models:
// in kiln.yaml (cfg) maps to a model folder (relative to root) or to a
// built-in model, and builtin:exemplar is always available. The ONNX
// Runtime is created on the first Open, with rtOpts (a library path that
// is relative is taken relative to root; an empty one is searched for as
// models.FindLibrary does). Folders, their fingerprints and the opened
// models are kept until Close.
func NewModelSet(cfg *manifests.Config, root string, rtOpts models.RuntimeOptions, log *slog.Logger) ModelSet {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &modelStore{root: root, rtOpts: rtOpts, log: log, folders: map[string]*folderEntry{}}
	s.guard = newMemoryGuard(nil, s.reclaim)
	s.setConfig(cfg)
	return s
}

// modelStore is NewModelSet's ModelSet.
type modelStore struct {
	root   string
	rtOpts models.RuntimeOptions
	cfgLib string // runtime.library of kiln.yaml, for FindLibrary
	log    *slog.Logger
	rtMu   sync.Mutex
	rt     *models.Runtime
	mu     sync.Mutex
	defs   map[string]*manifests.Model // by name
	// batch is runtime.batch (BatchSize): model folders opened from now
	// on stack the UNet calls of up to batch generations.
	batch   int
	folders map[string]*folderEntry // by absolute folder path
	closed  bool

	exMu      sync.Mutex
	exemplars []*exemplarEntry // most recently used first

	// guard admits the stages of every plan made with this set by their
	// memory estimates (see Env.Memory).
	guard *memoryGuard
}

// reclaim frees what memory the set can: the ONNX Runtime sessions no
// stage is using (they load again when needed) but those of the graph
// files keep names, then the Go heap's garbage, returned to the system.
func (s *modelStore) reclaim(keep func(path string) bool) {
	s.rtMu.Lock()
	rt := s.rt
	s.rtMu.Unlock()
	if rt != nil {
		var k func(models.PoolKey) bool
		if keep != nil {
			k = func(pk models.PoolKey) bool { return keep(pk.Path) }
		}
		if n := rt.ReleaseIdle(k); n > 0 {
			s.log.Debug("released idle ONNX Runtime sessions to make room", "sessions", n)
		}
	}
	debug.FreeOSMemory()
}

// exemplarEntry is one builtin:exemplar model: it holds the exemplars its
// prompt (or images) chose, so one is made per asset and kept for the
// asset's other stages (frames, variations) and for rebuilds.
type exemplarEntry struct {
	key  [32]byte
	once sync.Once
	m    *exemplar.Model
	err  error
	// made is m once it is made, for readers that must not wait.
	made atomic.Pointer[exemplar.Model]
}

// maxExemplarModels bounds the builtin:exemplar models kept (each holds a
// few small exemplar images and patch banks).
const maxExemplarModels = 16

// folderEntry is one opened model folder and its Diffusers per variant.
type folderEntry struct {
	mu        sync.Mutex
	dir       string
	folder    *models.Folder
	fp        string
	info      ModelInfo
	kind      manifests.ModelKind
	diffusers map[string]*models.Diffuser // by variant label ("" = as is)
}

// setConfig installs the name → model mapping of cfg.
func (s *modelStore) setConfig(cfg *manifests.Config) {
	defs := map[string]*manifests.Model{}
	if cfg != nil {
		for name, m := range cfg.Models {
			defs[name] = m
		}
		s.cfgLib = cfg.Runtime.Library
	}
	batch := BatchSize(0, s.rtOpts.Provider)
	if cfg != nil {
		batch = BatchSize(cfg.Runtime.Batch, s.rtOpts.Provider)
	}
	s.mu.Lock()
	s.defs = defs
	s.batch = batch
	s.mu.Unlock()
}

// Update replaces the project configuration (kiln.yaml changed in watch
// mode): names are mapped anew, while folders and models that are still
// named stay loaded.
func (s *modelStore) Update(cfg *manifests.Config) { s.setConfig(cfg) }

// Device names the device diffusion stages run on, for the executor's
// accelerator limit: "cpu" or "cuda:0".
func (s *modelStore) Device() string { return deviceName(s.rtOpts.Provider, s.rtOpts.DeviceID) }

func deviceName(provider string, id int) string {
	p := strings.ToLower(strings.TrimSpace(provider))
	if p == "" || p == models.ProviderCPU {
		return models.ProviderCPU
	}
	return p + ":" + strconv.Itoa(id)
}

// def returns the definition of name.
func (s *modelStore) def(name string) (*manifests.Model, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("the model set is closed")
	}
	if m, ok := s.defs[name]; ok {
		return m, nil
	}
	if name == exemplar.Name {
		return &manifests.Model{Name: name, Builtin: "exemplar"}, nil
	}
	names := make([]string, 0, len(s.defs))
	for n := range s.defs {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%w %q (models in kiln.yaml: %s; built-in: %s)", ErrUnknownModel, name, listOrNone(names), exemplar.Name)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// entry returns the folder of a model definition, opening it (reading its
// small JSON files) on first use and again when its content changed.
func (s *modelStore) entry(m *manifests.Model) (*folderEntry, error) {
	dir := m.Path
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(s.root, filepath.FromSlash(dir))
	}
	s.mu.Lock()
	e := s.folders[dir]
	if e == nil {
		e = &folderEntry{dir: dir}
		s.folders[dir] = e
	}
	s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.folder == nil || e.kind != m.Kind {
		if err := e.open(s, m); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// open (re)reads the folder. e.mu is held.
func (e *folderEntry) open(s *modelStore, m *manifests.Model) error {
	if !filepath.IsAbs(m.Path) {
		// kiln.yaml names model folders inside the project; a symlink
		// there must not lead kiln to load graphs from elsewhere.
		if _, err := safepath.Join(s.root, m.Path); err != nil {
			return fmt.Errorf("model %q: %w", m.Name, err)
		}
	}
	f, err := models.OpenFolder(e.dir)
	if err != nil {
		return fmt.Errorf("model %q: %w", m.Name, err)
	}
	if s.rtOpts.CacheDir != "" {
		f.CacheDir = s.rtOpts.CacheDir
	}
	e.folder, e.kind, e.fp = f, m.Kind, ""
	e.diffusers = map[string]*models.Diffuser{}
	e.info = folderInfo(m.Name, m.Kind, f)
	return nil
}

// folderInfo derives a folder model's planning facts and defaults.
func folderInfo(name string, kind manifests.ModelKind, f *models.Folder) ModelInfo {
	fam := string(kind)
	if fam == "" {
		cls, _ := f.Scheduler["_class_name"].(string)
		spacing, _ := f.Scheduler["timestep_spacing"].(string)
		pred, _ := f.Scheduler["prediction_type"].(string)
		switch {
		case cls == "LCMScheduler":
			fam = familyLCM
		case spacing == "trailing":
			fam = familyTurbo
		case f.SDXL:
			fam = familySDXL
		case pred == "v_prediction":
			fam = familySD2
		default:
			fam = familySD15
		}
	}
	info := ModelInfo{Name: name, Family: fam, VAEFactor: f.VAEFactor, Steps: 20, Guidance: 7.5,
		Scheduler: sampler.DefaultScheduler(f.Scheduler)}
	if info.VAEFactor < 1 {
		info.VAEFactor = 8
	}
	switch fam {
	case familySDXL:
		info.Guidance = 5
	case familyTurbo:
		info.Steps, info.Guidance = 4, 0
	case familyLCM:
		// LCM-distilled UNets take the guidance as an embedding; the
		// scheduler never doubles the batch.
		info.Steps, info.Guidance, info.Scheduler = 4, 8.5, sampler.LCM
	}
	switch {
	case f.SampleSize > 0:
		info.DefaultSize = f.SampleSize * info.VAEFactor
	case f.SDXL:
		info.DefaultSize = 1024
	default:
		info.DefaultSize = 512
	}
	return info
}

// exemplarInfo is builtin:exemplar's planning facts.
func exemplarInfo() ModelInfo {
	return ModelInfo{Name: exemplar.Name, Family: familyExemplar, VAEFactor: 1, DefaultSize: exemplar.DefaultSize,
		Steps: exemplar.DefaultSteps, Guidance: 0, Scheduler: sampler.DefaultScheduler(exemplar.SchedulerConfig())}
}

// Describe implements ModelSet: a folder model's facts come from its JSON
// files (read once, and again when its fingerprint changes).
func (s *modelStore) Describe(name string) (ModelInfo, error) {
	m, err := s.def(name)
	if err != nil {
		return ModelInfo{}, err
	}
	if m.Builtin != "" {
		info := exemplarInfo()
		info.Name = name
		return info, nil
	}
	e, err := s.entry(m)
	if err != nil {
		return ModelInfo{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	info := e.info
	info.Name = name
	return info, nil
}

// Fingerprint implements ModelSet. A folder whose fingerprint changed (a
// new export) is read again and its opened models are dropped.
func (s *modelStore) Fingerprint(name string) (string, error) {
	m, err := s.def(name)
	if err != nil {
		return "", err
	}
	if m.Builtin != "" {
		return exemplarFingerprint, nil
	}
	e, err := s.entry(m)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	fp, err := e.folder.Fingerprint()
	if err != nil {
		return "", fmt.Errorf("model %q: %w", name, err)
	}
	if e.fp != "" && e.fp != fp {
		// The folder changed (a new export): read its configuration
		// again and drop models opened on the old files.
		s.log.Info("model folder changed; reloading it", "model", name, "folder", e.dir)
		if err := e.open(s, m); err != nil {
			return "", err
		}
	}
	e.fp = fp
	return fp, nil
}

// runtime returns the ONNX Runtime, creating it on first use.
func (s *modelStore) runtime() (*models.Runtime, error) {
	s.rtMu.Lock()
	defer s.rtMu.Unlock()
	if s.rt != nil {
		return s.rt, nil
	}
	opts := s.rtOpts
	if opts.Library != "" {
		if !filepath.IsAbs(opts.Library) {
			opts.Library = filepath.Join(s.root, opts.Library)
		}
	} else {
		lib, source, err := models.FindLibrary(models.LibraryOptions{Config: s.cfgLib, ConfigDir: s.root, CacheDir: opts.CacheDir})
		if err != nil {
			return nil, err
		}
		s.log.Debug("found ONNX Runtime", "library", lib, "source", source)
		opts.Library = lib
	}
	if opts.Log == nil {
		opts.Log = s.log
	}
	rt, err := models.NewRuntime(opts)
	if err != nil {
		return nil, err
	}
	s.rt = rt
	return rt, nil
}

// Open implements ModelSet: it creates the runtime on first use, and makes
// each folder variant (as is, or circular along some axes) and each
// builtin:exemplar model once.
func (s *modelStore) Open(ctx context.Context, name string, o OpenOptions) (sampler.Model, func(), error) {
	m, err := s.def(name)
	if err != nil {
		return nil, nil, err
	}
	axes, err := tileAxes(o.Tile)
	if err != nil {
		return nil, nil, err
	}
	rt, err := s.runtime()
	if err != nil {
		return nil, nil, err
	}
	if m.Builtin != "" {
		if len(o.LoRAs) > 0 {
			return nil, nil, fmt.Errorf("model %q: LoRAs apply to Stable Diffusion model folders, not to %s", name, manifests.Exemplar)
		}
		em, err := s.exemplar(ctx, rt, o, axes)
		if err != nil {
			return nil, nil, err
		}
		return em, func() {}, nil
	}
	e, err := s.entry(m)
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	label := ""
	if !axes.None() {
		label = axes.Label()
	}
	key := label
	if len(o.LoRAs) > 0 {
		key += "|lora=" + loraKey(o.LoRAs)
	}
	s.mu.Lock()
	batch := s.batch
	s.mu.Unlock()
	if d := e.diffusers[key]; d != nil && batcherMax(d) == max(batch, 1) {
		// (A changed runtime.batch makes a new Diffuser; the sessions
		// stay loaded in the runtime's pool.)
		return d, func() {}, nil
	}
	opts := models.DiffuserOptions{Log: s.log}
	if label != "" {
		if opts, err = s.tiledOptions(ctx, e, axes); err != nil {
			return nil, nil, fmt.Errorf("model %q: %w", name, err)
		}
	}
	opts.Batch = batch
	opts.LoRAs = o.LoRAs
	d, err := models.NewDiffuser(rt, e.folder, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("model %q: %w", name, err)
	}
	e.diffusers[key] = d
	return d, func() {}, nil
}

// batcherMax is the most generations d's UNet calls stack, 1 when it does
// not batch.
func batcherMax(d *models.Diffuser) int {
	if b := d.Batcher(); b != nil {
		return b.Max()
	}
	return 1
}

// exemplar returns the builtin:exemplar model for o, made once per
// distinct prompt, seed, tiling and exemplar images (rendering the
// built-in exemplars takes about a second).
func (s *modelStore) exemplar(ctx context.Context, rt *models.Runtime, o OpenOptions, axes tiling.Axes) (*exemplar.Model, error) {
	key := exemplarKey(o, axes)

	s.exMu.Lock()
	var e *exemplarEntry
	for i, x := range s.exemplars {
		if x.key == key {
			e = x
			copy(s.exemplars[1:i+1], s.exemplars[:i])
			s.exemplars[0] = e
			break
		}
	}
	if e == nil {
		e = &exemplarEntry{key: key}
		s.exemplars = append([]*exemplarEntry{e}, s.exemplars...)
		if len(s.exemplars) > maxExemplarModels {
			s.exemplars = s.exemplars[:maxExemplarModels]
		}
	}
	s.exMu.Unlock()

	e.once.Do(func() {
		e.m, e.err = exemplar.New(ctx, rt, exemplar.Options{
			Prompt:    o.Prompt,
			Exemplars: o.Exemplars,
			Tile:      exemplar.Tiling{X: axes.X, Y: axes.Y},
			Seed:      o.Seed,
			CacheDir:  s.rtOpts.CacheDir,
			Log:       s.log,
		})
	})
	if e.err == nil {
		e.made.Store(e.m)
	}
	if e.err != nil {
		// Forget the failure (a cancelled build may retry).
		s.exMu.Lock()
		for i, x := range s.exemplars {
			if x == e {
				s.exemplars = append(s.exemplars[:i], s.exemplars[i+1:]...)
				break
			}
		}
		s.exMu.Unlock()
		return nil, e.err
	}
	return e.m, nil
}

// exemplarKey identifies the builtin:exemplar model of o.
func exemplarKey(o OpenOptions, axes tiling.Axes) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%q %d %s %d\x00", o.Prompt, o.Seed, axes, len(o.Exemplars))
	for _, img := range o.Exemplars {
		hashImage(h, img)
	}
	var key [32]byte
	h.Sum(key[:0])
	return key
}

// hashImage writes an image's size and pixels to h.
func hashImage(h io.Writer, img image.Image) {
	b := img.Bounds()
	fmt.Fprintf(h, "%d %d\x00", b.Dx(), b.Dy())
	if n, ok := img.(*image.NRGBA); ok && n.Stride == 4*b.Dx() {
		h.Write(n.Pix[:4*b.Dx()*b.Dy()])
		return
	}
	row := make([]byte, 0, 8*b.Dx())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row = row[:0]
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			row = append(row, byte(r>>8), byte(r), byte(g>>8), byte(g), byte(bl>>8), byte(bl), byte(a>>8), byte(a))
		}
		h.Write(row)
	}
}

// Close implements ModelSet: it forgets every model and closes the
// runtime.
func (s *modelStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.folders = map[string]*folderEntry{}
	s.mu.Unlock()
	s.exMu.Lock()
	s.exemplars = nil
	s.exMu.Unlock()
	s.rtMu.Lock()
	defer s.rtMu.Unlock()
	if s.rt != nil {
		err := s.rt.Close()
		s.rt = nil
		return err
	}
	return nil
}
