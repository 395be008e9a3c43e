package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-dev/kiln/models/onnx"
	ort "github.com/yalue/onnxruntime_go"
)

// Execution providers kiln knows how to ask ONNX Runtime for.
const (
	ProviderCPU      = "cpu"
	ProviderCUDA     = "cuda"
	ProviderTensorRT = "tensorrt"
	ProviderCoreML   = "coreml"
	ProviderDirectML = "directml"
	ProviderOpenVINO = "openvino"
)

// Providers lists the execution provider names RuntimeOptions.Provider
// accepts.
var Providers = []string{ProviderCPU, ProviderCUDA, ProviderTensorRT, ProviderCoreML, ProviderDirectML, ProviderOpenVINO}

// providerInstall says what a user installs to get each provider; it ends
// every "provider unavailable" error.
var providerInstall = map[string]string{
	ProviderCUDA:     "install the official ONNX Runtime 1.24 GPU build for Linux x64 (onnxruntime-linux-x64-gpu-1.24.x; needs an NVIDIA driver, CUDA 12 and cuDNN 9), keep libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so next to its libonnxruntime.so.1, and point kiln at that file with --ort-lib or KILN_ORT_LIB",
	ProviderTensorRT: "install the official ONNX Runtime 1.24 GPU build for Linux x64 (onnxruntime-linux-x64-gpu-1.24.x) plus NVIDIA TensorRT 10, keep libonnxruntime_providers_tensorrt.so next to its libonnxruntime.so.1, and point kiln at that file with --ort-lib or KILN_ORT_LIB",
	ProviderCoreML:   "CoreML needs macOS and the official ONNX Runtime 1.24 macOS build (libonnxruntime.dylib); point kiln at it with --ort-lib or KILN_ORT_LIB",
	ProviderDirectML: "DirectML needs Windows and the ONNX Runtime 1.24 DirectML build (onnxruntime.dll from Microsoft.ML.OnnxRuntime.DirectML); point kiln at it with --ort-lib or KILN_ORT_LIB",
	ProviderOpenVINO: "install an ONNX Runtime 1.24 build with the OpenVINO execution provider (Intel's OpenVINO build, with libonnxruntime_providers_openvino.so and the OpenVINO runtime) and point kiln at its libonnxruntime.so.1 with --ort-lib or KILN_ORT_LIB",
}

// RuntimeOptions configures NewRuntime.
type RuntimeOptions struct {
	// Library is the ONNX Runtime shared library (see FindLibrary).
	Library string
	// Provider is the execution provider: one of Providers; "" means cpu.
	Provider string
	// DeviceID selects the GPU (or other device) for providers that have
	// several.
	DeviceID int
	// ProviderOptions are provider-specific options, by provider name
	// (cuda, tensorrt, openvino, ...). For cuda and tensorrt they override
	// kiln's defaults (the README's "ONNX Runtime and GPUs" lists them and
	// why) and are checked against the options ONNX Runtime 1.24 knows
	// (ProviderOptionKeys); the cuda options also apply to the CUDA
	// provider that runs what TensorRT cannot. Other providers get theirs
	// as they are (for example device_type for OpenVINO).
	ProviderOptions map[string]map[string]string
	// Fallback "cpu" makes an unavailable provider a warning and runs on
	// the CPU instead; "" makes it an error.
	Fallback string
	// Threads is the number of intra-op threads per session; 0 lets ONNX
	// Runtime choose (one per physical core).
	Threads int
	// Spinning, when set, turns the spinning of ONNX Runtime's thread
	// pools on or off (the session options session.intra_op.allow_spinning
	// and session.inter_op.allow_spinning). A spinning thread waits for
	// work by busy-looping, which saves the wake-up latency between
	// operators but burns the core other stages could use. nil means
	// kiln's default, off: measured on 2 cores (BenchmarkSpinning,
	// BenchmarkSpinningExemplar; numbers in the README), spinning lost
	// whenever CPU stages ran beside the model, and lost alone too for
	// builtin:exemplar. With one thread there is no intra-op pool to spin.
	Spinning *bool
	// Shapes are the image and batch sizes the project will generate,
	// from which TensorRT's optimisation profiles are made (see
	// ShapePlan). The zero plan gives no profiles: TensorRT then builds
	// for the shapes it sees first, and again for larger ones.
	Shapes ShapePlan
	// MemoryBudget bounds the estimated memory of the sessions the pool
	// keeps loaded, in bytes; 0 means no bound. Sessions in use are never
	// evicted, so the budget can be exceeded while they run.
	MemoryBudget int64
	// CacheDir is kiln's cache folder, where graph signatures are
	// remembered across runs; "" means CacheDir(nil), and if that cannot be
	// determined nothing is remembered.
	CacheDir string
	// Log receives warnings and debug messages; nil discards them.
	Log *slog.Logger
}

// Runtime is kiln's handle on ONNX Runtime: the loaded library, the
// execution provider that runs sessions, and a pool of sessions shared by
// every stage that uses a model. It is safe for concurrent use.
type Runtime struct {
	lib       string
	version   string
	requested string
	deviceID  int
	provOpts  map[string]map[string]string // checked, by provider
	fallback  bool
	threads   int
	spinning  *bool
	budget    int64
	log       *slog.Logger
	cacheDir  string

	shapes atomic.Pointer[ShapePlan]
	// trtVer is the TensorRT version, looked up once by trtOnce
	// (trtVersionFn replaces the lookup in tests).
	trtOnce      sync.Once
	trtVer       string
	trtVersionFn func() string

	effective atomic.Pointer[string] // provider sessions actually use
	pool      *pool
	graphs    graphInfoCache
	stats     runtimeCounters
}

// NewRuntime loads the ONNX Runtime library (once per process), checks its
// version, checks that the requested execution provider is available, and
// returns a Runtime with an empty session pool.
//
// An unavailable provider is an error that names the provider and what to
// install, unless opts.Fallback is "cpu": then a warning is logged and the
// Runtime runs on the CPU; Provider reports which one runs.
func NewRuntime(opts RuntimeOptions) (*Runtime, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	provider := strings.ToLower(strings.TrimSpace(opts.Provider))
	if provider == "" {
		provider = ProviderCPU
	}
	if !validProvider(provider) {
		return nil, fmt.Errorf("unknown execution provider %q: use one of %s", opts.Provider, strings.Join(Providers, ", "))
	}
	switch opts.Fallback {
	case "", ProviderCPU:
	default:
		return nil, fmt.Errorf("unknown fallback %q: the only fallback is \"cpu\" (or none)", opts.Fallback)
	}
	if opts.DeviceID < 0 {
		return nil, fmt.Errorf("device id %d is negative", opts.DeviceID)
	}
	if opts.Library == "" {
		return nil, errors.New("no ONNX Runtime library given; " + libraryHint)
	}
	provOpts := map[string]map[string]string{}
	for _, p := range sortedKeys(opts.ProviderOptions) {
		name := strings.ToLower(strings.TrimSpace(p))
		if !validProvider(name) {
			return nil, fmt.Errorf("provider options for unknown execution provider %q: use one of %s", p, strings.Join(Providers, ", "))
		}
		checked, err := checkProviderOptions(name, opts.ProviderOptions[p])
		if err != nil {
			return nil, err
		}
		provOpts[name] = checked
	}
	version, err := loadEnvironment(opts.Library, log)
	if err != nil {
		return nil, err
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		cacheDir, _ = CacheDir(nil)
	}
	r := &Runtime{
		lib:       opts.Library,
		version:   version,
		requested: provider,
		deviceID:  opts.DeviceID,
		provOpts:  provOpts,
		fallback:  opts.Fallback == ProviderCPU,
		threads:   opts.Threads,
		spinning:  opts.Spinning,
		budget:    opts.MemoryBudget,
		log:       log,
		cacheDir:  cacheDir,
	}
	r.PlanShapes(opts.Shapes)
	eff := provider
	if provider != ProviderCPU {
		if err := r.probeProvider(provider); err != nil {
			if !r.fallback {
				return nil, err
			}
			log.Warn("execution provider unavailable; falling back to CPU", "provider", provider, "err", err)
			eff = ProviderCPU
		}
	}
	r.effective.Store(&eff)
	r.pool = newPool(r, opts.MemoryBudget)
	log.Debug("ONNX Runtime ready", "library", opts.Library, "version", version, "provider", eff)
	return r, nil
}

func validProvider(p string) bool {
	for _, q := range Providers {
		if p == q {
			return true
		}
	}
	return false
}

// Provider is the execution provider sessions run on: the requested one,
// or "cpu" after a fallback. Reports record it.
func (r *Runtime) Provider() string { return *r.effective.Load() }

// Device names where sessions run, as pipeline stages name devices:
// "cpu", or provider:device such as "cuda:0".
func (r *Runtime) Device() string {
	p := r.Provider()
	if p == ProviderCPU {
		return ProviderCPU
	}
	return p + ":" + strconv.Itoa(r.deviceID)
}

// RequestedProvider is the provider the options asked for.
func (r *Runtime) RequestedProvider() string { return r.requested }

// DeviceID is the device the provider runs on.
func (r *Runtime) DeviceID() int { return r.deviceID }

// Version is the ONNX Runtime release the loaded library reports.
func (r *Runtime) Version() string { return r.version }

// Library is the path of the loaded ONNX Runtime library.
func (r *Runtime) Library() string { return r.lib }

// PlanShapes replaces the shape plan TensorRT's optimisation profiles are
// made from (RuntimeOptions.Shapes). Sessions created from then on use
// it; loaded ones keep the profile they were built with.
func (r *Runtime) PlanShapes(p ShapePlan) {
	p.Sizes = append([]ImageSize(nil), p.Sizes...)
	p.Batches = append([]int(nil), p.Batches...)
	r.shapes.Store(&p)
}

// ShapePlan returns the shape plan in use.
func (r *Runtime) ShapePlan() ShapePlan { return *r.shapes.Load() }

// Close destroys every idle session and marks the Runtime closed; sessions
// still in use are destroyed when released. The process-wide ONNX Runtime
// environment stays loaded (see loadEnvironment).
func (r *Runtime) Close() error {
	r.pool.close()
	return nil
}

// ---- process-wide environment ----

// ortEnv guards the ONNX Runtime environment. onnxruntime_go keeps the
// loaded library and its OrtEnv in package-level variables, and ONNX
// Runtime allows one environment per process, so this is the one piece of
// global state in kiln: every Runtime shares the environment, the first
// one loads it, and it is never unloaded (unloading and reloading the
// library in one process is not supported by ONNX Runtime's static state).
// A mutex rather than sync.Once, so a failed load (wrong path) can be
// retried with another library.
var ortEnv struct {
	mu      sync.Mutex
	lib     string // canonical path of the loaded library
	version string
}

func canonicalPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		p = a
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p
}

// loadEnvironment loads lib and creates the ONNX Runtime environment, or
// checks that the already-loaded one is the same library.
func loadEnvironment(lib string, log *slog.Logger) (string, error) {
	ortEnv.mu.Lock()
	defer ortEnv.mu.Unlock()
	canon := canonicalPath(lib)
	if ortEnv.lib != "" {
		if ortEnv.lib != canon {
			return "", fmt.Errorf("ONNX Runtime is already loaded from %s in this process and cannot also load %s: use one library per kiln process", ortEnv.lib, lib)
		}
		return ortEnv.version, nil
	}
	if err := CheckLibraryFile(lib); err != nil {
		return "", fmt.Errorf("ONNX Runtime library: %w; %s", err, libraryHint)
	}
	// ONNX Runtime writes its own log lines to stderr. kiln reports every
	// failure itself, so they are shown only when debugging.
	level := ort.WithLogLevelFatal()
	if log.Enabled(context.Background(), slog.LevelDebug) {
		level = ort.WithLogLevelWarning()
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(level); err != nil {
		return "", explainLoadError(lib, err)
	}
	version := ort.GetVersion()
	if !versionAtLeast(version, 1, ORTAPIMinor) {
		ort.DestroyEnvironment()
		return "", fmt.Errorf("%s is ONNX Runtime %s, but kiln needs 1.%d or newer (the C API onnxruntime_go v1.27.0 is built against); %s", lib, version, ORTAPIMinor, libraryHint)
	}
	if !strings.HasPrefix(version, "1."+strconv.Itoa(ORTAPIMinor)+".") {
		log.Warn("ONNX Runtime library is newer than the release kiln is tested with", "library", lib, "version", version, "tested", ORTVersion)
	}
	ort.DisableTelemetry()
	ortEnv.lib = canon
	ortEnv.version = version
	return version, nil
}

// explainLoadError turns onnxruntime_go's initialisation errors into
// messages that say what is wrong with the file.
func explainLoadError(lib string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Error setting ORT API base: 2"):
		return fmt.Errorf("%s does not provide version %d of the ONNX Runtime C API: it is older than ONNX Runtime 1.%d; %s", lib, ORTAPIMinor, ORTAPIMinor, libraryHint)
	case strings.Contains(msg, "OrtGetApiBase"):
		return fmt.Errorf("%s loads but is not ONNX Runtime (it has no OrtGetApiBase); %s", lib, libraryHint)
	case strings.Contains(msg, "Error loading ONNX shared library"):
		return fmt.Errorf("cannot load %s: %v (a library it needs may be missing: check `ldd %s`); %s", lib, err, lib, libraryHint)
	}
	return fmt.Errorf("initialise ONNX Runtime from %s: %w", lib, err)
}

// ---- execution providers ----

// Session configuration keys for thread-pool spinning (ONNX Runtime's
// onnxruntime_session_options_config_keys.h); their values are "0" or "1".
const (
	configIntraOpSpinning = "session.intra_op.allow_spinning"
	configInterOpSpinning = "session.inter_op.allow_spinning"
)

// sessionConfig returns the session configuration entries every session
// gets: spinning as RuntimeOptions.Spinning says, off when it is nil.
func (r *Runtime) sessionConfig() map[string]string {
	v := "0"
	if r.spinning != nil && *r.spinning {
		v = "1"
	}
	return map[string]string{configIntraOpSpinning: v, configInterOpSpinning: v}
}

// sessionOptions returns session options for provider, with threads and
// spinning set. trt is the graph's TensorRT set-up, nil when provider is
// not tensorrt or when probing. The caller destroys them.
func (r *Runtime) sessionOptions(provider string, trt *trtGraph) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("create ONNX Runtime session options: %w", err)
	}
	if r.threads > 0 {
		if err := so.SetIntraOpNumThreads(r.threads); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("set %d threads: %w", r.threads, err)
		}
	}
	cfg := r.sessionConfig()
	for _, k := range sortedKeys(cfg) {
		if err := so.AddSessionConfigEntry(k, cfg[k]); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("set the session option %s to %s: %w", k, cfg[k], err)
		}
	}
	if err := r.appendProvider(so, provider, trt); err != nil {
		so.Destroy()
		return nil, err
	}
	return so, nil
}

// probeProvider checks that provider can be added to session options, which
// is where ONNX Runtime loads the provider's own libraries.
func (r *Runtime) probeProvider(provider string) error {
	so, err := r.sessionOptions(provider, nil)
	if err != nil {
		return err
	}
	so.Destroy()
	return nil
}

func (r *Runtime) providerError(provider string, cause error) error {
	return fmt.Errorf("execution provider %q (device %d) is not available with the ONNX Runtime library %s: %s. To use it, %s; or set fallback: cpu in kiln.yaml to run on the CPU instead", provider, r.deviceID, r.lib, cleanORTMessage(cause.Error()), providerInstall[provider])
}

// cleanORTMessage drops the source location ONNX Runtime puts before its
// exception messages ("/onnxruntime_src/...cc:1952 ... [ONNXRuntimeError] :
// 1 : FAIL : "), which means nothing to users, and a trailing period.
func cleanORTMessage(msg string) string {
	if i := strings.Index(msg, "[ONNXRuntimeError] : "); i >= 0 {
		rest := msg[i+len("[ONNXRuntimeError] : "):]
		// rest is "<code> : <NAME> : <message>".
		if parts := strings.SplitN(rest, " : ", 3); len(parts) == 3 {
			msg = parts[2]
		}
	}
	return strings.TrimSuffix(strings.TrimSpace(msg), ".")
}

// cudaOptions are the CUDA provider's options: kiln's defaults with the
// user's over them.
func (r *Runtime) cudaOptions() map[string]string {
	return mergeOptions(cudaDefaults(r.deviceID, r.budget), r.provOpts[ProviderCUDA])
}

// appendProvider adds provider to so. For tensorrt, trt gives the graph's
// options (cache folders, profile); without it (a probe) kiln's defaults
// and the user's options are used, which touch no folder.
func (r *Runtime) appendProvider(so *ort.SessionOptions, provider string, trt *trtGraph) error {
	opts := map[string]string{}
	for k, v := range r.provOpts[provider] {
		opts[k] = v
	}
	dev := strconv.Itoa(r.deviceID)
	var err error
	switch provider {
	case ProviderCPU:
		return nil
	case ProviderCUDA:
		err = appendCUDA(so, r.cudaOptions())
	case ProviderTensorRT:
		topts := mergeOptions(tensorRTDefaults(r.deviceID), opts)
		if trt != nil {
			topts = trt.options
		}
		var t *ort.TensorRTProviderOptions
		t, err = ort.NewTensorRTProviderOptions()
		if err == nil {
			if err = t.Update(topts); err == nil {
				err = so.AppendExecutionProviderTensorRT(t)
			}
			t.Destroy()
		}
		if err == nil {
			// Nodes TensorRT cannot take run on CUDA rather than the CPU,
			// as ONNX Runtime's own provider lists do it. The TensorRT
			// provider needs CUDA anyway, so this rarely fails; if it
			// does, those nodes fall to the CPU.
			if cerr := appendCUDA(so, r.cudaOptions()); cerr != nil {
				r.log.Warn("TensorRT without the CUDA provider; unsupported nodes run on the CPU", "err", cerr)
			}
		}
	case ProviderCoreML:
		err = so.AppendExecutionProviderCoreMLV2(opts)
	case ProviderDirectML:
		// DirectML needs sequential execution and no memory patterns.
		if err = so.SetMemPattern(false); err == nil {
			if err = so.SetExecutionMode(ort.ExecutionModeSequential); err == nil {
				err = so.AppendExecutionProviderDirectML(r.deviceID)
			}
		}
	case ProviderOpenVINO:
		if _, ok := opts["device_type"]; !ok {
			opts["device_type"] = "GPU"
			if r.deviceID > 0 {
				opts["device_type"] = "GPU." + dev
			}
		}
		err = so.AppendExecutionProviderOpenVINO(opts)
	default:
		return fmt.Errorf("unknown execution provider %q: use one of %s", provider, strings.Join(Providers, ", "))
	}
	if err != nil {
		return r.providerError(provider, err)
	}
	return nil
}

func appendCUDA(so *ort.SessionOptions, opts map[string]string) error {
	c, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer c.Destroy()
	if err := c.Update(opts); err != nil {
		return err
	}
	return so.AppendExecutionProviderCUDA(c)
}

// ---- statistics ----

type runtimeCounters struct {
	runs        atomic.Int64
	runNanos    atomic.Int64
	runCPUNanos atomic.Int64
	loads       atomic.Int64
	loadNanos   atomic.Int64
	hits        atomic.Int64
	evictions   atomic.Int64
	fallbacks   atomic.Int64
	graphReads  atomic.Int64
}

// RuntimeStats are counters since the Runtime was created. Benchmarks
// compare RunTime (time inside ONNX Runtime's Run) with wall time to
// measure kiln's own overhead.
type RuntimeStats struct {
	Runs    int64         // session runs
	RunTime time.Duration // total wall time inside Run
	// RunCPU is the CPU time the threads that called Run spent inside it.
	// With one intra-op thread ONNX Runtime computes on the calling
	// thread, so this is all of its CPU time, and the process's CPU time
	// minus RunCPU is kiln's own, a measure a loaded machine does not
	// blur as it blurs wall time. With more threads the pool's threads
	// are not counted. It is 0 on systems other than Linux.
	RunCPU    time.Duration
	Loads     int64         // sessions created
	LoadTime  time.Duration // total time creating sessions
	Hits      int64         // Acquire calls served by a pooled session
	Evictions int64         // sessions evicted to stay within the budget
	Loaded    int           // sessions currently loaded
	InUse     int           // sessions currently acquired
	Bytes     int64         // estimated memory of the loaded sessions
	Budget    int64         // the memory budget (0: none)
}

// Stats returns the Runtime's counters.
func (r *Runtime) Stats() RuntimeStats {
	s := RuntimeStats{
		Runs:      r.stats.runs.Load(),
		RunTime:   time.Duration(r.stats.runNanos.Load()),
		RunCPU:    time.Duration(r.stats.runCPUNanos.Load()),
		Loads:     r.stats.loads.Load(),
		LoadTime:  time.Duration(r.stats.loadNanos.Load()),
		Hits:      r.stats.hits.Load(),
		Evictions: r.stats.evictions.Load(),
	}
	s.Loaded, s.InUse, s.Bytes, s.Budget = r.pool.usage()
	return s
}

// ---- graph signatures ----

// TensorInfo describes one graph input or output as ONNX Runtime reports
// it.
type TensorInfo struct {
	Name string `json:"name"`
	// Type is the element type (float32, float16, int64, ...).
	Type ort.TensorElementDataType `json:"type"`
	// Shape has -1 for every dimension the graph leaves open (symbolic or
	// unknown). A rank-0 tensor (a scalar) has an empty Shape.
	Shape []int64 `json:"shape"`
}

// Rank is the number of dimensions.
func (t TensorInfo) Rank() int { return len(t.Shape) }

func (t TensorInfo) String() string {
	return fmt.Sprintf("%s %s%v", t.Name, dtypeName(t.Type), t.Shape)
}

// GraphInfo is a model file's inputs and outputs.
type GraphInfo struct {
	Inputs  []TensorInfo `json:"inputs"`
	Outputs []TensorInfo `json:"outputs"`
}

// Input returns the input called name.
func (g GraphInfo) Input(name string) (TensorInfo, bool) { return find(g.Inputs, name) }

// Output returns the output called name.
func (g GraphInfo) Output(name string) (TensorInfo, bool) { return find(g.Outputs, name) }

func find(ts []TensorInfo, name string) (TensorInfo, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

func names(ts []TensorInfo) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

func dtypeName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeFloat16:
		return "float16"
	case ort.TensorElementDataTypeDouble:
		return "float64"
	case ort.TensorElementDataTypeBFloat16:
		return "bfloat16"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	case ort.TensorElementDataTypeInt32:
		return "int32"
	case ort.TensorElementDataTypeInt8:
		return "int8"
	case ort.TensorElementDataTypeUint8:
		return "uint8"
	case ort.TensorElementDataTypeBool:
		return "bool"
	case ort.TensorElementDataTypeString:
		return "string"
	}
	return fmt.Sprintf("dtype(%d)", int(t))
}

// graphInfoCache remembers graph signatures in memory, keyed by file
// identity, in front of the on-disk cache.
type graphInfoCache struct {
	mu sync.Mutex
	m  map[string]graphInfoEntry
}

type graphInfoEntry struct {
	size, mtime int64
	info        GraphInfo
}

// GraphInfo returns the inputs and outputs of the ONNX model at path, as
// ONNX Runtime reads them. Reading a signature loads the model once with
// optimisations off, so results are remembered in memory and in kiln's
// cache (keyed by path, size and modification time).
func (r *Runtime) GraphInfo(path string) (GraphInfo, error) {
	abs, fi, err := statModel(path)
	if err != nil {
		return GraphInfo{}, err
	}
	size, mtime := fi.Size(), fi.ModTime().UnixNano()
	r.graphs.mu.Lock()
	if e, ok := r.graphs.m[abs]; ok && e.size == size && e.mtime == mtime {
		r.graphs.mu.Unlock()
		return e.info, nil
	}
	r.graphs.mu.Unlock()

	var sc *statCache
	if r.cacheDir != "" {
		sc = openStatCache(filepath.Join(r.cacheDir, "graphinfo.json"))
	}
	var info GraphInfo
	if sc == nil || !sc.get(abs, fi, &info) {
		info, err = r.readGraphInfo(abs)
		if err != nil {
			return GraphInfo{}, err
		}
		if sc != nil {
			sc.put(abs, fi, info)
			if err := sc.save(); err != nil {
				r.log.Debug("cannot remember graph signature", "err", err)
			}
		}
	}
	r.graphs.mu.Lock()
	if r.graphs.m == nil {
		r.graphs.m = map[string]graphInfoEntry{}
	}
	r.graphs.m[abs] = graphInfoEntry{size, mtime, info}
	r.graphs.mu.Unlock()
	return info, nil
}

// specGraphInfo is GraphInfo for a session spec: graphs whose weights live
// in another folder cannot be opened by ONNX Runtime from their path, so
// their signature is read from the ONNX file itself.
func (r *Runtime) specGraphInfo(spec SessionSpec) (GraphInfo, error) {
	if spec.ExternalDataDir == "" {
		return r.GraphInfo(spec.Path)
	}
	return graphInfoFromONNX(spec.Path)
}

// graphInfoFromONNX reads a graph's signature from the ONNX file: the
// inputs that are not initializers (as ONNX Runtime lists them) and the
// outputs, with symbolic or unknown dimensions as -1.
func graphInfoFromONNX(path string) (GraphInfo, error) {
	m, err := onnx.Load(path)
	if err != nil {
		return GraphInfo{}, err
	}
	if m.Graph == nil {
		return GraphInfo{}, fmt.Errorf("load %s: the model has no graph", path)
	}
	inits := map[string]bool{}
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = true
	}
	conv := func(v *onnx.ValueInfo, what string) (TensorInfo, error) {
		if v.Type == nil || v.Type.Tensor == nil || v.Type.Tensor.Shape == nil {
			return TensorInfo{}, fmt.Errorf("%s: %s %q is not a tensor of known rank", path, what, v.Name)
		}
		shape := make([]int64, len(v.Type.Tensor.Shape.Dims))
		for i, d := range v.Type.Tensor.Shape.Dims {
			shape[i] = -1
			if d != nil && d.Param == "" && d.Value > 0 {
				shape[i] = d.Value
			}
		}
		// ONNX's TensorProto.DataType and ONNX Runtime's element type enum
		// share their numbering.
		return TensorInfo{Name: v.Name, Type: ort.TensorElementDataType(v.Type.Tensor.ElemType), Shape: shape}, nil
	}
	var g GraphInfo
	for _, in := range m.Graph.Inputs {
		if inits[in.Name] {
			continue
		}
		t, err := conv(in, "input")
		if err != nil {
			return GraphInfo{}, err
		}
		g.Inputs = append(g.Inputs, t)
	}
	for _, out := range m.Graph.Outputs {
		t, err := conv(out, "output")
		if err != nil {
			return GraphInfo{}, err
		}
		g.Outputs = append(g.Outputs, t)
	}
	return g, nil
}

func (r *Runtime) readGraphInfo(path string) (GraphInfo, error) {
	r.stats.graphReads.Add(1)
	so, err := ort.NewSessionOptions()
	if err != nil {
		return GraphInfo{}, fmt.Errorf("create ONNX Runtime session options: %w", err)
	}
	defer so.Destroy()
	so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll)
	so.SetIntraOpNumThreads(1)
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, so)
	if err != nil {
		return GraphInfo{}, explainModelError(path, err)
	}
	var g GraphInfo
	for _, in := range ins {
		t, err := tensorInfo(path, "input", in)
		if err != nil {
			return GraphInfo{}, err
		}
		g.Inputs = append(g.Inputs, t)
	}
	for _, out := range outs {
		t, err := tensorInfo(path, "output", out)
		if err != nil {
			return GraphInfo{}, err
		}
		g.Outputs = append(g.Outputs, t)
	}
	return g, nil
}

func tensorInfo(path, what string, io ort.InputOutputInfo) (TensorInfo, error) {
	if io.OrtValueType != ort.ONNXTypeTensor {
		return TensorInfo{}, fmt.Errorf("%s: %s %q is a %s, not a tensor; kiln runs only graphs with tensor inputs and outputs", path, what, io.Name, io.OrtValueType)
	}
	shape := make([]int64, len(io.Dimensions))
	for i, d := range io.Dimensions {
		if d <= 0 {
			d = -1
		}
		shape[i] = d
	}
	return TensorInfo{Name: io.Name, Type: io.DataType, Shape: shape}, nil
}

// explainModelError adds what to do to ONNX Runtime's model-loading
// errors, and drops onnxruntime_go's wrapping.
func explainModelError(path string, err error) error {
	msg := err.Error()
	for _, prefix := range []string{"Error loading temporary session: ", "Error creating C session from file: ", "Error creating C session: ", "Exception during initialization: "} {
		msg = strings.ReplaceAll(msg, prefix, "")
	}
	msg = cleanORTMessage(msg)
	switch {
	case strings.Contains(msg, "Protobuf parsing failed") || strings.Contains(msg, "ModelProto does not have a graph") || strings.Contains(msg, "No graph was found"):
		return fmt.Errorf("load %s: not a valid ONNX model (truncated or corrupt file?): re-export or re-download it (%s)", path, msg)
	case strings.Contains(msg, "cannot get file size") || strings.Contains(msg, "No such file or directory"):
		file := "it names"
		if m := bracketed.FindStringSubmatch(msg); m != nil {
			file = m[1]
		}
		return fmt.Errorf("load %s: the external weights file %s is missing: it must stay next to the .onnx file, under the name the export gave it (%s)", path, file, msg)
	case strings.Contains(msg, "External initializer") || strings.Contains(msg, "external data") || strings.Contains(msg, "External data"):
		return fmt.Errorf("load %s: its external weights are truncated or do not belong to this graph: re-export or re-download the model (%s)", path, msg)
	}
	return fmt.Errorf("load %s: %s", path, msg)
}

var bracketed = regexp.MustCompile(`\[(/[^\]]+)\]`)

// sortedKeys returns m's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
