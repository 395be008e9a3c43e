package sampler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// A Batcher stacks the UNet calls of generations that run at once on one
// model into shared calls, so that several images fill an accelerator one
// image leaves idle. Generations whose UNet inputs have the same shapes
// (latent size and channels, conditioning width and length, SDXL's and
// LCM's extra inputs) meet in a group; the group makes one call when every
// member has handed in its step (a rendezvous: nothing waits on a timer),
// concatenating the members' rows along the batch axis and handing each
// its rows of the prediction. A member leaves when its last step is done,
// when it fails or when its context is cancelled, and the others go on
// without it.
//
// Members must be at the same timestep unless the model takes one
// timestep per row (Info.RowTimesteps): for other models a group takes new
// members only until its first call, and its members share the timestep
// schedule, so they stay in step.
//
// The images do not change with batching: each member's rows are the
// same values its own call would give. On ONNX Runtime's CPU kernels that
// holds for calls of two rows or more, whatever their number, but a call
// of one row takes other kernels (matrix-vector products) that round
// differently, so a generation whose own calls carry one row (one image
// without classifier-free guidance) does not join a group; nor does one
// whose images take several calls per step (Request.BatchSize). Generate
// uses a Batcher given in Request.Batcher. A Batcher is safe for
// concurrent use.
type Batcher struct {
	m   Model
	max int

	mu     sync.Mutex
	groups map[batchKey][]*batchGroup
	// hook, when set (by tests), is called after a generation joined a
	// group ("join", with the group's size) and when it waits for the
	// others' steps ("wait", with how many have handed theirs in).
	hook func(event string, n int)
}

// NewBatcher returns a Batcher for m's UNet calls, whose groups hold at
// most max generations (the bound on the memory of one call: max times a
// generation's rows). max below 2 batches nothing.
func NewBatcher(m Model, max int) *Batcher {
	return &Batcher{m: m, max: max, groups: map[batchKey][]*batchGroup{}}
}

// Max is the most generations one call carries.
func (b *Batcher) Max() int { return b.max }

// batchKey is what must agree for UNet calls to be stacked.
type batchKey struct {
	lc, lh, lw   int64  // latent channels and size
	tokens, dim  int64  // encoder_hidden_states
	pdim         int64  // SDXL's text_embeds width, 0 without
	timeIDs      bool   // SDXL's time_ids
	tcond        int64  // LCM's timestep_cond width, 0 without
	schedule     string // the timesteps, for models that take one per call
	rowTimesteps bool
}

// batchGroup is generations meeting for their UNet calls.
type batchGroup struct {
	key     batchKey
	members []*batchMember // in joining order, which is row order
	started bool           // a call was made: closed unless rowTimesteps
	ready   int            // members that handed in this round's step
	buf     batchBuffers   // the stacked inputs and the prediction
}

// batchBuffers are a group's stacked tensors, reused from call to call.
type batchBuffers struct {
	latents, hidden, pooled, timeIDs, tcond, out []float32
	timesteps                                    []float64
}

// batchMember is one generation in a group.
type batchMember struct {
	b    *Batcher
	g    *batchGroup
	rows int

	// Set by submit for the round, read by the call's leader.
	in    UNetInput
	ctx   context.Context
	ready bool
	done  chan batchResult // buffered: the leader never blocks on it
	// shared is the most members a call carrying this member had.
	shared int
}

type batchResult struct {
	out   Tensor
	err   error
	count int
}

// join adds a generation whose calls carry in's shapes to a group with
// room, or to a new one. timesteps is its schedule.
func (b *Batcher) join(in UNetInput, timesteps []float64) *batchMember {
	ls, hs := in.Latents.Shape, in.Cond.Hidden.Shape
	info := b.m.Info()
	k := batchKey{lc: ls[1], lh: ls[2], lw: ls[3], tokens: hs[1], dim: hs[2],
		timeIDs: len(in.TimeIDs.Shape) > 0, rowTimesteps: info.RowTimesteps}
	if len(in.Cond.Pooled.Shape) == 2 {
		k.pdim = in.Cond.Pooled.Shape[1]
	}
	if len(in.TimestepCond.Shape) == 2 {
		k.tcond = in.TimestepCond.Shape[1]
	}
	if !k.rowTimesteps {
		k.schedule = fmt.Sprint(timesteps)
	}
	mb := &batchMember{b: b, rows: int(ls[0]), done: make(chan batchResult, 1)}
	b.mu.Lock()
	for _, g := range b.groups[k] {
		if len(g.members) < b.max && (k.rowTimesteps || !g.started) {
			mb.g = g
			break
		}
	}
	if mb.g == nil {
		mb.g = &batchGroup{key: k}
		b.groups[k] = append(b.groups[k], mb.g)
	}
	mb.g.members = append(mb.g.members, mb)
	n := len(mb.g.members)
	b.mu.Unlock()
	if b.hook != nil {
		b.hook("join", n)
	}
	return mb
}

// unet hands in the member's step and returns its prediction, written
// into in.Out, once the group's call ran.
func (mb *batchMember) unet(ctx context.Context, in UNetInput) (Tensor, error) {
	b, g := mb.b, mb.g
	b.mu.Lock()
	mb.in, mb.ctx, mb.ready = in, ctx, true
	g.ready++
	round := g.take()
	ready := g.ready
	b.mu.Unlock()
	if round != nil {
		b.call(ctx, g, round)
	} else if b.hook != nil {
		b.hook("wait", ready)
	}
	select {
	case r := <-mb.done:
		mb.shared = max(mb.shared, r.count)
		return r.out, r.err
	case <-ctx.Done():
		mb.leave(ctx)
		return Tensor{}, ctx.Err()
	}
}

// leave takes the member out of its group. When the members left have
// all handed in their step, it makes their call.
func (mb *batchMember) leave(ctx context.Context) {
	b, g := mb.b, mb.g
	if g == nil {
		return
	}
	b.mu.Lock()
	mb.g = nil
	if mb.ready {
		mb.ready = false
		g.ready--
	}
	g.members = slices.DeleteFunc(g.members, func(o *batchMember) bool { return o == mb })
	if len(g.members) == 0 {
		b.groups[g.key] = slices.DeleteFunc(b.groups[g.key], func(o *batchGroup) bool { return o == g })
		if len(b.groups[g.key]) == 0 {
			delete(b.groups, g.key)
		}
	}
	round := g.take()
	b.mu.Unlock()
	if round != nil {
		b.call(ctx, g, round)
	}
}

// take returns the round's members when every member has handed in its
// step, marking them taken; nil otherwise. b.mu is held.
func (g *batchGroup) take() []*batchMember {
	if len(g.members) == 0 || g.ready < len(g.members) {
		return nil
	}
	round := slices.Clone(g.members)
	for _, m := range round {
		m.ready = false
	}
	g.ready = 0
	g.started = true
	return round
}

// call makes one UNet call for the members of a round and hands each its
// rows. It runs on the goroutine that completed the round, under a
// context cancelled only when every member's context is, so that one
// member's cancellation does not fail the others' step.
func (b *Batcher) call(ctx context.Context, g *batchGroup, round []*batchMember) {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var live atomic.Int32
	live.Store(int32(len(round)))
	for _, m := range round {
		stop := context.AfterFunc(m.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	if len(round) == 1 {
		// Alone: the member's own call, on its own buffers.
		m := round[0]
		out, err := b.m.UNet(cctx, m.in)
		m.done <- batchResult{out: out, err: err, count: 1}
		return
	}
	in, err := g.stack(round)
	if err == nil {
		var out Tensor
		if out, err = b.m.UNet(cctx, in); err == nil && len(out.Data) != len(in.Latents.Data) {
			err = fmt.Errorf("the UNet returned shape %v for a batch of shape %v", out.Shape, in.Latents.Shape)
		}
		if err == nil {
			g.buf.out = out.Data
		}
	}
	off := 0
	for _, m := range round {
		if err != nil {
			m.done <- batchResult{err: err}
			continue
		}
		n := len(m.in.Latents.Data)
		dst := m.in.Out
		if len(dst) < n {
			dst = make([]float32, n)
		}
		copy(dst[:n], g.buf.out[off:off+n])
		off += n
		m.done <- batchResult{out: Tensor{Shape: m.in.Latents.Shape, Data: dst[:n]}, count: len(round)}
	}
}

// stack concatenates the round's inputs along the batch axis into the
// group's buffers.
func (g *batchGroup) stack(round []*batchMember) (UNetInput, error) {
	rows := 0
	for _, m := range round {
		rows += m.rows
	}
	bf := &g.buf
	var in UNetInput
	cat := func(dst *[]float32, part func(*batchMember) Tensor) Tensor {
		var shape []int64
		*dst = (*dst)[:0]
		for _, m := range round {
			t := part(m)
			if len(t.Shape) == 0 {
				return Tensor{}
			}
			shape = t.Shape
			*dst = append(*dst, t.Data...)
		}
		s := slices.Clone(shape)
		s[0] = int64(rows)
		return Tensor{Shape: s, Data: *dst}
	}
	in.Latents = cat(&bf.latents, func(m *batchMember) Tensor { return m.in.Latents })
	in.Cond.Hidden = cat(&bf.hidden, func(m *batchMember) Tensor { return m.in.Cond.Hidden })
	in.Cond.Pooled = cat(&bf.pooled, func(m *batchMember) Tensor { return m.in.Cond.Pooled })
	in.TimeIDs = cat(&bf.timeIDs, func(m *batchMember) Tensor { return m.in.TimeIDs })
	in.TimestepCond = cat(&bf.tcond, func(m *batchMember) Tensor { return m.in.TimestepCond })
	in.Timestep = round[0].in.Timestep
	if g.key.rowTimesteps {
		bf.timesteps = bf.timesteps[:0]
		for _, m := range round {
			for range m.rows {
				bf.timesteps = append(bf.timesteps, m.in.Timestep)
			}
		}
		in.Timesteps = bf.timesteps
	} else {
		for _, m := range round[1:] {
			if m.in.Timestep != in.Timestep {
				return UNetInput{}, fmt.Errorf("batched generations are at timesteps %g and %g, and the UNet takes one timestep per call", in.Timestep, m.in.Timestep)
			}
		}
	}
	if cap(bf.out) < len(in.Latents.Data) {
		bf.out = make([]float32, len(in.Latents.Data))
	}
	in.Out = bf.out[:len(in.Latents.Data)]
	return in, nil
}
