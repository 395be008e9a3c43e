package sampler

import "fmt"

// Memory is an estimate of the memory a piece of work needs, in bytes, by
// where it lives. Estimates are upper bounds worked out by arithmetic
// from sizes alone, before anything is allocated, so that work that
// cannot fit is refused instead of failing half-way.
type Memory struct {
	// Live is the most the work holds in the Go heap at once.
	Live int64
	// Churn is what the work allocates in the Go heap and drops before it
	// ends: garbage the collector frees later, so the heap can briefly
	// hold more than Live.
	Churn int64
	// Native is resident memory outside the Go heap: ONNX Runtime's
	// sessions, weights and working memory.
	Native int64
	// Reserved is address space that is reserved but mostly not touched
	// (thread stacks, C allocator arenas). It counts against an
	// address-space limit (ulimit -v), not against free memory.
	Reserved int64
}

// Plus returns the memory of m and o held at the same time.
func (m Memory) Plus(o Memory) Memory {
	return Memory{Live: m.Live + o.Live, Churn: m.Churn + o.Churn, Native: m.Native + o.Native, Reserved: m.Reserved + o.Reserved}
}

// Then returns the memory of m followed by o: the Go heap holds the larger
// of their peaks, everything o drops is churn, and native memory (ONNX
// Runtime keeps its sessions loaded) adds up.
func (m Memory) Then(o Memory) Memory {
	return Memory{Live: max(m.Live, o.Live), Churn: m.Churn + o.Churn, Native: m.Native + o.Native, Reserved: m.Reserved + o.Reserved}
}

// ModelMemory is what a model adds to a generation's memory (see
// EstimateMemory): the Go memory its calls allocate besides the buffers
// the sampler passes in, and its memory outside the Go heap.
type ModelMemory struct {
	// Held is the Go memory the model holds throughout the generation
	// (its own tensors, made for it).
	Held int64
	// Encode is the Go memory EncodeImage allocates (its outputs
	// included) for the init image of an img2img generation.
	Encode int64
	// UNet is the Go memory one UNet call allocates (beyond UNetInput.Out,
	// when the model writes into it), dropped before the next call.
	UNet int64
	// Decode is the Go memory DecodeLatents allocates for one image, its
	// output included.
	Decode int64
	// Native and Reserved are the model's memory outside the Go heap
	// while it generates (see Memory).
	Native, Reserved int64
}

// MemoryQuery describes a generation for EstimateMemory.
type MemoryQuery struct {
	// Request is the request as Generate would get it. Its InitImage may
	// be nil: set Img2Img instead (the request's Width and Height are then
	// the init image's size).
	Request Request
	// Img2Img says the generation starts from an init image.
	Img2Img bool
	// Model returns what the model adds when its UNet calls carry rows
	// images (twice the batch under classifier-free guidance); nil adds
	// nothing.
	Model func(rows int) ModelMemory
	// Batched says the generation may share its UNet calls through a
	// Batcher: it then counts its share of the group's stacked buffers
	// (inputs, conditioning and prediction) and of what the shared call
	// allocates, so that the estimates of a group's members add up to
	// what their calls take together. The model's native memory for the
	// rows is in each member's Model estimate already.
	Batched bool
}

// EstimateMemory returns an upper bound of the memory Generate needs for
// q on a model described by info: the latents, the buffers the step loop
// and the scheduler keep, the init image and noise tensors, the decoded
// images, and what q.Model says the model adds. It allocates nothing. It
// fails for requests Generate would refuse.
//
// The Go heap holds, at its fullest, one of three phases: preparing the
// latents (with img2img, the init image as a tensor, the encoder's
// outputs and the noise), the step loop (latents, the UNet's input and
// output buffers, the scheduler's state, what a UNet call allocates), or
// decoding (latents, one image's latents and decoder output, the images
// decoded so far).
func EstimateMemory(info Info, q MemoryQuery) (Memory, error) {
	req := q.Request
	if q.Img2Img && req.Width == 0 && req.Height == 0 {
		return Memory{}, fmt.Errorf("estimate memory: an img2img request needs its size")
	}
	g, err := plan(info, req, q.Img2Img || req.InitImage != nil)
	if err != nil {
		return Memory{}, err
	}
	const f32 = 4
	per := int64(g.per) * f32
	count := int64(g.count)
	lat := count * per
	rows := int64(g.batch)
	if g.guided {
		rows *= 2
	}
	pixels := int64(g.width) * int64(g.height)
	var mm ModelMemory
	if q.Model != nil {
		mm = q.Model(int(rows))
	}
	calls := int64(len(g.sch.Timesteps())) * ((count + int64(g.batch) - 1) / int64(g.batch))

	// Preparing: the init image as a tensor, the encoder's outputs, the
	// posterior sample's noise and the noise added to the latents.
	var prep int64
	if q.Img2Img {
		prep = 3*pixels*f32 + mm.Encode + per + lat
	}
	// The step loop: input and output buffers, the guided predictions
	// when several calls make a step, the scheduler's one buffer of
	// state (ancestral noise or the previous prediction), hidden states.
	loop := 2*rows*per + lat + mm.UNet + condBytes(rows)
	if g.batch < g.count {
		loop += lat
	}
	if q.Batched && g.batch == g.count && rows >= 2 {
		loop += 2*rows*per + condBytes(rows) + mm.UNet
	}
	// Decoding: one image's latents, the decoder's output and the
	// images so far (8-bit RGBA).
	dec := per + mm.Decode + count*4*pixels

	m := Memory{
		Live:     mm.Held + lat + max(prep, loop, dec),
		Churn:    prep + loop + calls*mm.UNet + count*(per+mm.Decode),
		Native:   mm.Native,
		Reserved: mm.Reserved,
	}
	return m, nil
}

// condBytes bounds the text conditioning of rows UNet rows: 77 tokens of
// up to 2048 values (SDXL's concatenated encoders), plus pooled
// embeddings.
func condBytes(rows int64) int64 { return rows * (77*2048 + 2048) * 4 }
