package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// TensorRT compiles each graph into an engine for the GPU it runs on and
// the input shapes it will see, which takes minutes for a Stable
// Diffusion UNet. kiln keeps the engines in its cache folder so that only
// the first build of a graph compiles:
//
//	<cache>/tensorrt/<key>/           engine and profile files of one graph
//	<cache>/tensorrt/timing/<version>/ TensorRT's timing cache, shared
//
// <key> is a hash of the graph's fingerprint (its file and its weights,
// by content), the optimisation profile, the ONNX Runtime and TensorRT
// versions and the other TensorRT options, so a change of any of them
// builds a new engine in a new folder instead of tripping over a stale
// one. The timing cache records how fast each kernel is on this GPU and
// speeds up later compiles of any graph (ONNX Runtime names its file
// after the GPU's compute capability).
//
// The optimisation profile gives TensorRT the range of shapes each
// dynamic input will take (trt_profile_min_shapes, _opt_ and _max_): from
// ShapePlan, the image sizes and batch sizes the project uses. A size
// inside the range runs on the engine built once; ONNX Runtime builds the
// engine when the session is created. A run whose shapes fall outside
// the range makes TensorRT build again: kiln logs it as a recompile and
// reports it with an EngineEvent.

// latentFactor is the VAE's spatial scale factor, which turns image
// sizes into latent sizes: 8 for every Stable Diffusion family (1.x, 2.x,
// XL and their LCM and Turbo distillations).
const latentFactor = 8

// defaultTokens is CLIP's sequence length, for text inputs whose length
// the graph leaves open.
const defaultTokens = 77

// ImageSize is an image's width and height in pixels.
type ImageSize struct{ Width, Height int }

// ShapePlan is what a project will ask of its diffusion models, so that
// TensorRT can build engines that cover it once.
type ShapePlan struct {
	// Sizes are the image sizes generated (including img2img and hires
	// passes). A size listed several times weighs more when the profile's
	// optimum is chosen (the most frequent size).
	Sizes []ImageSize
	// Batches are the UNet batch sizes: images per UNet call, doubled with
	// classifier-free guidance (2 for one guided image, 1 for an unguided
	// one). Empty means 1 and 2. The most frequent is the optimum.
	Batches []int
}

// IsZero reports whether the plan names no size.
func (p ShapePlan) IsZero() bool { return len(p.Sizes) == 0 }

// dimRange is the range one dimension of an input takes.
type dimRange struct{ min, opt, max int64 }

func fixedDim(v int64) dimRange { return dimRange{v, v, v} }

// shapeProfile is a TensorRT optimisation profile: the range of each
// dynamic input's shape.
type shapeProfile struct {
	names  []string // inputs in graph order
	ranges map[string][]dimRange
}

func (p *shapeProfile) format(pick func(dimRange) int64) string {
	parts := make([]string, 0, len(p.names))
	for _, n := range p.names {
		dims := make([]string, len(p.ranges[n]))
		for i, d := range p.ranges[n] {
			dims[i] = strconv.FormatInt(pick(d), 10)
		}
		parts = append(parts, n+":"+strings.Join(dims, "x"))
	}
	return strings.Join(parts, ",")
}

// options returns the profile in ONNX Runtime's option format,
// "input:1x4x64x64,other:1x77x768".
func (p *shapeProfile) options() (min, opt, max string) {
	return p.format(func(d dimRange) int64 { return d.min }),
		p.format(func(d dimRange) int64 { return d.opt }),
		p.format(func(d dimRange) int64 { return d.max })
}

// mostFrequent returns the value met most often, the largest on a tie.
func mostFrequent[T any](vals []T, key func(T) int64) T {
	count := map[int64]int{}
	var best T
	bestN, bestK := 0, int64(0)
	for _, v := range vals {
		k := key(v)
		count[k]++
		if n := count[k]; n > bestN || (n == bestN && k > bestK) {
			best, bestN, bestK = v, n, k
		}
	}
	return best
}

// planRanges turns a plan into the ranges of the UNet batch and of the
// latent height and width. ok is false when the plan names no size.
func planRanges(plan ShapePlan) (batch, lh, lw dimRange, ok bool) {
	var sizes []ImageSize
	for _, s := range plan.Sizes {
		if s.Width >= latentFactor && s.Height >= latentFactor {
			sizes = append(sizes, ImageSize{s.Width / latentFactor * latentFactor, s.Height / latentFactor * latentFactor})
		}
	}
	if len(sizes) == 0 {
		return batch, lh, lw, false
	}
	batches := []int{}
	for _, b := range plan.Batches {
		if b > 0 {
			batches = append(batches, b)
		}
	}
	if len(batches) == 0 {
		batches = []int{1, 2}
	}
	batch = dimRange{min: int64(batches[0]), max: int64(batches[0])}
	for _, b := range batches {
		batch.min, batch.max = min(batch.min, int64(b)), max(batch.max, int64(b))
	}
	batch.opt = int64(mostFrequent(batches, func(b int) int64 { return int64(b) }))
	opt := mostFrequent(sizes, func(s ImageSize) int64 { return int64(s.Width)<<32 | int64(s.Height) })
	lh = dimRange{min: int64(sizes[0].Height), max: int64(sizes[0].Height), opt: int64(opt.Height)}
	lw = dimRange{min: int64(sizes[0].Width), max: int64(sizes[0].Width), opt: int64(opt.Width)}
	for _, s := range sizes {
		lh.min, lh.max = min(lh.min, int64(s.Height)), max(lh.max, int64(s.Height))
		lw.min, lw.max = min(lw.min, int64(s.Width)), max(lw.max, int64(s.Width))
	}
	div := func(d dimRange) dimRange {
		return dimRange{d.min / latentFactor, d.opt / latentFactor, d.max / latentFactor}
	}
	return batch, div(lh), div(lw), true
}

// hasDynamicInput reports whether any input leaves a dimension open.
func hasDynamicInput(info GraphInfo) bool {
	for _, in := range info.Inputs {
		if slicesContainNegative(in.Shape) {
			return true
		}
	}
	return false
}

func slicesContainNegative(shape []int64) bool {
	for _, d := range shape {
		if d < 0 {
			return true
		}
	}
	return false
}

// profileFor returns the optimisation profile of a diffusion model's
// graph for plan: the UNet (batch from plan.Batches, latent size from
// plan.Sizes), the text encoders (one or two prompts) or the VAE decoder
// and encoder (one image at a time, as the sampler decodes). It returns
// nil and why when the graph has dynamic inputs it cannot fill (TensorRT
// then builds for the shapes it sees first, and again for larger ones),
// and nil and "" when no input is dynamic.
//
// ONNX Runtime needs a profile for every dynamic input when it gets any,
// so a graph gets a complete profile or none.
func profileFor(info GraphInfo, plan ShapePlan) (*shapeProfile, string) {
	if !hasDynamicInput(info) {
		return nil, ""
	}
	batch, lh, lw, ok := planRanges(plan)
	if !ok {
		return nil, "the project's image sizes are not known"
	}
	// Text encoders take the prompt, and the negative prompt with
	// classifier-free guidance.
	text := dimRange{1, 1, 2}
	if batch.opt%2 == 0 {
		text.opt = 2
	}
	one := fixedDim(1)
	var role string
	byName := map[string]TensorInfo{}
	for _, in := range info.Inputs {
		byName[in.Name] = in
	}
	has := func(names ...string) bool {
		for _, n := range names {
			if _, ok := byName[n]; ok {
				return true
			}
		}
		return false
	}
	switch {
	case has("encoder_hidden_states", "context") && has("sample", "x", "latent_model_input"):
		role = "unet"
	case has("input_ids"):
		role = "text"
	case len(info.Inputs) == 1 && info.Inputs[0].Rank() == 4:
		in := info.Inputs[0]
		switch c := in.Shape[1]; {
		case c == 3 || (c < 0 && in.Name == "sample"):
			role = "vae-encoder"
		case c > 0 || in.Name == "latent_sample":
			role = "vae-decoder"
		}
	}
	if role == "" {
		return nil, "kiln does not know which diffusion component the graph is"
	}
	p := &shapeProfile{ranges: map[string][]dimRange{}}
	for _, in := range info.Inputs {
		if !slicesContainNegative(in.Shape) {
			continue // static: TensorRT needs no range for it
		}
		want, why := roleDims(role, in, batch, text, one, lh, lw)
		if why != "" {
			return nil, why
		}
		dims := make([]dimRange, in.Rank())
		for i, d := range in.Shape {
			switch {
			case d > 0:
				dims[i] = fixedDim(d)
			case i < len(want) && want[i] != (dimRange{}):
				dims[i] = want[i]
			default:
				return nil, fmt.Sprintf("input %s: kiln cannot tell what dimension %d is", in, i)
			}
		}
		p.names = append(p.names, in.Name)
		p.ranges[in.Name] = dims
	}
	return p, ""
}

// roleDims says what each dimension of a component's input takes; a zero
// dimRange is one kiln does not fill (the graph must fix it).
func roleDims(role string, in TensorInfo, batch, text, one, lh, lw dimRange) ([]dimRange, string) {
	var none dimRange
	pixels := func(d dimRange) dimRange {
		return dimRange{d.min * latentFactor, d.opt * latentFactor, d.max * latentFactor}
	}
	switch role {
	case "unet":
		switch in.Name {
		case "sample", "x", "latent_model_input":
			return []dimRange{batch, fixedDim(4), lh, lw}, ""
		case "timestep", "timesteps", "t":
			return []dimRange{batch}, ""
		case "encoder_hidden_states", "context":
			return []dimRange{batch, fixedDim(defaultTokens), none}, ""
		case "text_embeds", "timestep_cond":
			return []dimRange{batch, none}, ""
		case "time_ids":
			return []dimRange{batch, fixedDim(6)}, ""
		}
	case "text":
		switch in.Name {
		case "input_ids", "attention_mask":
			return []dimRange{text, fixedDim(defaultTokens)}, ""
		}
	case "vae-decoder":
		return []dimRange{one, fixedDim(4), lh, lw}, ""
	case "vae-encoder":
		return []dimRange{one, fixedDim(3), pixels(lh), pixels(lw)}, ""
	}
	return nil, fmt.Sprintf("input %s is not one kiln fills", in)
}

// ---- engine events ----

// NoteEngineCompile is the build report note a stage records when a
// TensorRT engine was compiled while it ran: the graph and how long the
// compile took (EngineEvent.Note).
const NoteEngineCompile = "tensorrt_compile"

// EngineEvent reports a TensorRT engine being made ready for a session:
// compiled, or loaded from kiln's engine cache. A stage gets them through
// WithEngineNotify, to say in its progress line that a compile is running
// (Done false) and how long it took (Done true).
type EngineEvent struct {
	// Graph names the graph, as its folder and file ("unet/model.onnx").
	Graph string
	// Provider is the execution provider building the engine (tensorrt).
	Provider string
	// Reason says why an engine is needed: a new session, or input
	// shapes outside the engine's optimisation profile.
	Reason string
	// Cache is the engine cache folder of the graph.
	Cache string
	// Done is false when the work starts and true when it ended.
	Done bool
	// Compiled reports, when Done, that a new engine was built rather
	// than loaded from the cache.
	Compiled bool
	// Took is, when Done, how long it took.
	Took time.Duration
}

// String is the event as a progress line says it.
func (e EngineEvent) String() string {
	switch {
	case !e.Done:
		return fmt.Sprintf("preparing the TensorRT engine for %s (%s; a first build compiles, which takes minutes)", e.Graph, e.Reason)
	case e.Compiled:
		return fmt.Sprintf("compiled the TensorRT engine for %s in %s", e.Graph, e.Took.Round(time.Second))
	}
	return fmt.Sprintf("loaded the TensorRT engine for %s from the cache in %s", e.Graph, e.Took.Round(time.Millisecond))
}

// Note is the value of the NoteEngineCompile note for a finished compile:
// "unet/model.onnx 3m12s".
func (e EngineEvent) Note() string {
	return e.Graph + " " + e.Took.Round(time.Second).String()
}

type engineNotifyKey struct{}

// WithEngineNotify returns a context that reports TensorRT engine work
// done for the calls made with it (Acquire, Session.Run, and so every
// Diffuser method) to fn. fn is called on the goroutine that made the
// call, before and after the work. A session another call is already
// loading reports only to that call's context.
func WithEngineNotify(ctx context.Context, fn func(EngineEvent)) context.Context {
	return context.WithValue(ctx, engineNotifyKey{}, fn)
}

func notifyEngine(ctx context.Context, e EngineEvent) {
	if fn, ok := ctx.Value(engineNotifyKey{}).(func(EngineEvent)); ok && fn != nil {
		fn(e)
	}
}

// ---- engine caches ----

// trtGraph is what kiln knows of one graph on the TensorRT provider.
type trtGraph struct {
	label     string
	options   map[string]string // the provider options of its sessions
	engineDir string
	profile   *shapeProfile // nil: none given

	mu sync.Mutex
	// accepted are the shapes the engine covers: the profile's ranges,
	// the graph's fixed shapes, and what earlier runs widened them to.
	accepted map[string][]dimRange
}

// trtConfig is what a graph's TensorRT options are made from.
type trtConfig struct {
	deviceID    int
	user        map[string]string // checked user options
	cacheRoot   string            // <cache>/tensorrt; "" turns the caches off
	fingerprint string
	ortVersion  string
	trtVersion  string
	profile     *shapeProfile
}

// tensorRTGraphOptions returns a graph's TensorRT provider options and
// its engine cache folder: kiln's defaults, the user's options over them,
// the cache folders keyed as the package comment describes, and the
// profile. A user trt_engine_cache_path or trt_timing_cache_path moves
// the root the keyed folders are made in.
func tensorRTGraphOptions(c trtConfig) (opts map[string]string, engineDir string) {
	opts = mergeOptions(tensorRTDefaults(c.deviceID), c.user)
	if c.profile != nil {
		opts["trt_profile_min_shapes"], opts["trt_profile_opt_shapes"], opts["trt_profile_max_shapes"] = c.profile.options()
	}
	engineRoot, timingRoot := c.cacheRoot, c.cacheRoot
	if p := c.user["trt_engine_cache_path"]; p != "" {
		engineRoot = p
	}
	if p := c.user["trt_timing_cache_path"]; p != "" {
		timingRoot = p
	}
	if engineRoot == "" {
		opts["trt_engine_cache_enable"] = "0"
	} else {
		engineDir = filepath.Join(engineRoot, engineKey(c, opts))
		opts["trt_engine_cache_path"] = engineDir
	}
	if timingRoot == "" {
		opts["trt_timing_cache_enable"] = "0"
	} else {
		opts["trt_timing_cache_path"] = filepath.Join(timingRoot, "timing", safeName(c.trtVersion))
	}
	return opts, engineDir
}

// engineKey hashes what an engine depends on; see the package comment.
func engineKey(c trtConfig, opts map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "kiln tensorrt engine v1\ngraph %s\nonnxruntime %s\ntensorrt %s\n", c.fingerprint, c.ortVersion, c.trtVersion)
	for _, k := range sortedKeys(opts) {
		switch k {
		case "device_id", "trt_engine_cache_path", "trt_timing_cache_path":
			continue // where things are, not what is built
		}
		fmt.Fprintf(h, "%s=%s\n", k, opts[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// safeName makes a version string usable as a folder name.
func safeName(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// graphLabel names a graph by its folder and file, "unet/model.onnx".
func graphLabel(path string) string {
	return filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
}

// graphFingerprint hashes a graph's file and its weights by content: the
// files estimateModelBytes counts, through kiln's hash cache, so a
// multi-gigabyte UNet is read once and not again until it changes.
func graphFingerprint(ctx context.Context, cacheDir, path, externalDataDir string) (string, error) {
	files := []string{path}
	dir := filepath.Dir(path)
	if externalDataDir != "" {
		dir = externalDataDir
	}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, de := range ents {
			name := de.Name()
			if name == filepath.Base(path) || strings.HasPrefix(name, ".") {
				continue
			}
			switch strings.ToLower(filepath.Ext(name)) {
			case ".onnx", ".json", ".txt", ".md", ".yaml", ".yml":
				continue
			}
			if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.Mode().IsRegular() {
				files = append(files, filepath.Join(dir, name))
			}
		}
	}
	sort.Strings(files[1:])
	hc := OpenHashCache(cacheDir)
	h := sha256.New()
	for _, f := range files {
		sum, size, err := hc.SHA256(ctx, f)
		if err != nil {
			return "", fmt.Errorf("fingerprint %s for its TensorRT engine: %w", path, err)
		}
		fmt.Fprintf(h, "%s\t%d\t%s\n", filepath.Base(f), size, sum)
	}
	hc.Save() // failing to remember only costs time next run
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	size  int64
	mtime time.Time
}

// engineFiles lists the engine files in dir, to tell a compile (a new or
// rewritten .engine file) from a load.
func engineFiles(dir string) map[string]fileStamp {
	out := map[string]fileStamp{}
	if dir == "" {
		return out
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, de := range ents {
		if !strings.HasSuffix(de.Name(), ".engine") {
			continue
		}
		if fi, err := de.Info(); err == nil {
			out[de.Name()] = fileStamp{fi.Size(), fi.ModTime()}
		}
	}
	return out
}

// changedFiles reports whether after has a file before lacks or changed.
func changedFiles(before, after map[string]fileStamp) bool {
	for name, st := range after {
		if b, ok := before[name]; !ok || b != st {
			return true
		}
	}
	return false
}

// newTRTGraph sets up what the shape checks need.
func newTRTGraph(label string, opts map[string]string, engineDir string, profile *shapeProfile, info GraphInfo) *trtGraph {
	g := &trtGraph{label: label, options: opts, engineDir: engineDir, profile: profile, accepted: map[string][]dimRange{}}
	for _, in := range info.Inputs {
		if profile != nil {
			if r, ok := profile.ranges[in.Name]; ok {
				g.accepted[in.Name] = append([]dimRange(nil), r...)
				continue
			}
		}
		fixed := make([]dimRange, 0, in.Rank())
		for _, d := range in.Shape {
			if d <= 0 {
				fixed = nil
				break
			}
			fixed = append(fixed, fixedDim(d))
		}
		if fixed != nil || in.Rank() == 0 {
			g.accepted[in.Name] = fixed
		}
	}
	return g
}

// buildsAtCreation reports whether ONNX Runtime builds the engine when
// the session is created: when every dynamic input has a profile (or
// there is none). Otherwise it builds at the first run.
func (g *trtGraph) buildsAtCreation(info GraphInfo) bool {
	return g.profile != nil || !hasDynamicInput(info)
}

// admit checks a run's input shapes against the shapes the engine
// covers, widens those to take them in (as ONNX Runtime widens the
// engine's profile when it builds again), and says why TensorRT has to
// build, or "" when it does not. outside reports that shapes fell
// outside the optimisation profile or what earlier runs covered (rather
// than a first run of a graph without a profile).
func (g *trtGraph) admit(ins []TensorInfo, values []ort.Value) (reason string, outside bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var first, out []string
	for i, in := range ins {
		if i >= len(values) || values[i] == nil {
			continue
		}
		shape := values[i].GetShape()
		acc, ok := g.accepted[in.Name]
		switch {
		case ok && len(acc) == len(shape) && within(acc, shape):
			continue
		case ok && len(acc) == len(shape):
			out = append(out, fmt.Sprintf("%s %s (the engine covers %s)", in.Name, formatShape(shape), formatRanges(acc)))
			for j, d := range shape {
				acc[j].min, acc[j].max = min(acc[j].min, d), max(acc[j].max, d)
			}
		default:
			first = append(first, in.Name+" "+formatShape(shape))
			acc = make([]dimRange, len(shape))
			for j, d := range shape {
				acc[j] = fixedDim(d)
			}
			g.accepted[in.Name] = acc
		}
	}
	switch {
	case len(out) > 0:
		return "input shapes outside the optimisation profile: " + strings.Join(append(out, first...), ", "), true
	case len(first) > 0:
		return "first run, with " + strings.Join(first, ", "), false
	}
	return "", false
}

func within(acc []dimRange, shape []int64) bool {
	for i, d := range shape {
		if d < acc[i].min || d > acc[i].max {
			return false
		}
	}
	return true
}

func formatShape(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return strings.Join(parts, "x")
}

func formatRanges(r []dimRange) string {
	lo := make([]int64, len(r))
	hi := make([]int64, len(r))
	for i, d := range r {
		lo[i], hi[i] = d.min, d.max
	}
	return formatShape(lo) + " to " + formatShape(hi)
}

// tensorRTVersion is the TensorRT release the dynamic loader finds
// (libnvinfer.so.10's file name), "unknown" when it finds none. It is
// looked up once per Runtime, and only for the tensorrt provider.
func (r *Runtime) tensorRTVersion() string {
	r.trtOnce.Do(func() {
		if r.trtVersionFn != nil {
			r.trtVer = r.trtVersionFn()
			return
		}
		r.trtVer = "unknown"
		rep := CheckGPUPrereqs(context.Background(), ProviderTensorRT, PrereqOptions{})
		for _, l := range rep.Libraries {
			if strings.HasPrefix(l.Name, "libnvinfer.so") && l.Path != "" && l.Version != "" {
				r.trtVer = l.Version
			}
		}
	})
	return r.trtVer
}

// prepareTensorRT works out a graph's TensorRT options and engine cache
// folder, and creates the folders.
func (r *Runtime) prepareTensorRT(ctx context.Context, spec SessionSpec, info GraphInfo) (*trtGraph, error) {
	label := graphLabel(spec.Path)
	profile, why := profileFor(info, r.ShapePlan())
	if why != "" {
		r.log.Debug("no TensorRT optimisation profile; TensorRT builds for the shapes it sees first and again for larger ones", "graph", label, "why", why)
	}
	c := trtConfig{
		deviceID:   r.deviceID,
		user:       r.provOpts[ProviderTensorRT],
		ortVersion: r.version,
		trtVersion: r.tensorRTVersion(),
		profile:    profile,
	}
	if r.cacheDir != "" {
		c.cacheRoot = filepath.Join(r.cacheDir, "tensorrt")
		fp, err := graphFingerprint(ctx, r.cacheDir, spec.Path, spec.ExternalDataDir)
		if err != nil {
			return nil, err
		}
		c.fingerprint = fp + spec.LoRA.poolKey() // merged weights make another engine
	} else {
		r.log.Warn("no cache folder: TensorRT compiles every graph again in every run", "graph", label)
	}
	opts, dir := tensorRTGraphOptions(c)
	for _, d := range []string{dir, opts["trt_timing_cache_path"]} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("TensorRT cache folder for %s: %w; make kiln's cache folder writable or set KILN_CACHE_HOME", label, err)
		}
	}
	return newTRTGraph(label, opts, dir, profile, info), nil
}
