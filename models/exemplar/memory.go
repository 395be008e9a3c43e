package exemplar

import (
	"image"
	"runtime"
	"sort"

	"github.com/kiln-dev/kiln/models/sampler"
)

// MemoryOptions describe a generation for EstimateMemory.
type MemoryOptions struct {
	// Exemplars are the sizes of the images given as Options.Exemplars;
	// empty means the built-in library.
	Exemplars []image.Point
	// Rows is how many images one UNet call carries (2 under
	// classifier-free guidance); 0 means 1.
	Rows int
	// Threads is ONNX Runtime's intra-op thread count per session; 0 means
	// one per CPU, an upper bound of ONNX Runtime's default.
	Threads int
}

// Memory parameters of the denoiser graphs, measured on ONNX Runtime 1.24
// (CPU) and rounded up; see EstimateMemory.
const (
	// memFeatureCopies is how many [pixels, d] feature tensors (the
	// Conv's output, its transpose, the scaled copy, the split chunks)
	// ONNX Runtime holds at once: two, plus slack for its planner.
	memFeatureCopies = 2.25
	// memImageCopies is how many image-sized tensors (the pooled and
	// padded input, the concatenated predictions, their transposes and
	// DepthToSpace) it holds at once.
	memImageCopies = 5
	// memSessionBytes is what a session costs besides its working
	// memory: the graph, its weights (a small bank), and bookkeeping.
	memSessionBytes = 16 << 20
	// memThreadReserve is the address space of one ONNX Runtime worker
	// thread: its stack and the C allocator's arena it gets. It is
	// reserved, not resident.
	memThreadReserve = 72 << 20
	// memLevelBuildBytes bounds the Go memory of building one level's
	// patch bank and graph.
	memLevelBuildBytes = 16 << 20
	// memArenaSlack is the address space ONNX Runtime's CPU arena maps
	// beyond what it uses, as a fraction of that: it extends in regions
	// of doubling size (up to 1 GiB), so the last is partly unused
	// (measured up to 17% at 1536x1536). Under an address-space limit it
	// maps less.
	memArenaSlack = 0.2
)

// EstimateMemory returns what a w×h generation adds to
// sampler.EstimateMemory on a Model made with the default bank, dims and
// patch schedule: the Go memory of its calls (UNet returns a new buffer
// per call, DecodeLatents and EncodeImage copy the latents) and of the
// model itself (its exemplar tensors, patch banks and graphs), and ONNX
// Runtime's memory for every patch level the schedule reaches at that
// size: one session per level, which the Runtime's pool keeps loaded,
// each with its working memory, the address space its arena maps beyond
// that, and its worker threads.
//
// A level compares patches on the image pooled by d (1, 2, 4 or 8) with
// P = w·h/d² positions and D = min(3p², 32) dimensions. Its session holds
// about 2.25·D·P floats of patch features (the Conv output and its
// copies: the bulk, 128 bytes per pixel at full resolution) plus five
// image-sized tensors (12 bytes per pixel each) and three 4-Mi-logit
// softmax chunks.
func EstimateMemory(w, h int, o MemoryOptions) sampler.ModelMemory {
	const f32 = 4
	rows := int64(max(o.Rows, 1))
	threads := o.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	pixels := int64(max(w, 0)) * int64(max(h, 0))
	img := 3 * pixels * f32
	m := sampler.ModelMemory{
		Encode: img,
		// A call may also build a level's patch bank and graph.
		UNet:   rows*img + memLevelBuildBytes,
		Decode: img,
	}
	side := DefaultExemplarSize
	if len(o.Exemplars) > 0 {
		side = 0
		for _, e := range o.Exemplars {
			side = max(side, min(e.X, e.Y))
			// Each exemplar is kept as a float tensor by the model.
			m.Held += 3 * int64(e.X) * int64(e.Y) * f32
		}
	}
	seen := map[[2]int]bool{}
	sched := DefaultPatchSchedule()
	for i := range sched {
		// levelFor on the one entry: its pooling as the size allows.
		lv := memFitLevel(levelFor(sched[i:i+1], 1, w, h), side)
		k := [2]int{lv.Size, lv.Down}
		if seen[k] {
			continue
		}
		seen[k] = true
		work := memLevelBytes(lv, w, h)
		m.Native += work + memSessionBytes
		m.Reserved += int64(threads-1)*memThreadReserve + int64(memArenaSlack*float64(work))
	}
	return m
}

// memLevelBytes bounds ONNX Runtime's working memory for one denoiser graph
// at level lv on w×h images (see EstimateMemory).
func memLevelBytes(lv PatchLevel, w, h int) int64 {
	const f32 = 4
	d := max(lv.Down, 1)
	r := lv.Size / 2
	pooled := int64(w/d) * int64(h/d)
	padded := int64(w/d+2*r) * int64(h/d+2*r)
	dims := int64(min(3*lv.Size*lv.Size, DefaultDims))
	n := DefaultBankSize
	chunk := int64(chunkPixels(n, int(pooled)))
	full := int64(w) * int64(h)
	floats := int64(memFeatureCopies*float64(dims*pooled)) + memImageCopies*3*full + 2*3*padded + 3*chunk*int64(n)
	return floats * f32
}

// memFitLevel is Model.fit for exemplars whose largest shorter side is side.
func memFitLevel(lv PatchLevel, side int) PatchLevel {
	for lv.Down > 1 && lv.Size*lv.Down > side {
		lv.Down /= 2
	}
	return lv
}

// GraphPaths returns the denoiser graphs the model has built for w×h
// images so far (all of them once a w×h generation has run): what a
// caller checks against the Runtime's pooled sessions to tell whether a
// generation at that size would find its working memory already
// allocated.
func (m *Model) GraphPaths(w, h int) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k, p := range m.graphs {
		if k.w == w && k.h == h {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
