package sampler_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"sync"
	"testing"

	"github.com/kiln-dev/kiln/generators/sampler"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// batchDiffuser opens a generated model folder of flavour fl twice on the
// package's runtime: without batching and with a Batcher of up to max
// generations. The two share their sessions through the runtime's pool.
func batchDiffuser(t testing.TB, fl testmodels.Flavour, max int) (plain, batched *models.Diffuser) {
	t.Helper()
	r, f := ortRuntime(t), modelFolder(t, fl)
	var err error
	if plain, err = models.NewDiffuser(r, f, models.DiffuserOptions{}); err != nil {
		t.Fatal(err)
	}
	if batched, err = models.NewDiffuser(r, f, models.DiffuserOptions{Batch: max}); err != nil {
		t.Fatal(err)
	}
	if batched.Batcher() == nil || plain.Batcher() != nil {
		t.Fatal("DiffuserOptions.Batch does not decide whether the Diffuser has a Batcher")
	}
	return plain, batched
}

// barrier holds the generations that join a batch group until n have
// joined, so that they meet whatever the scheduling of their goroutines.
func barrier(n int) func(string, int) {
	var wg sync.WaitGroup
	wg.Add(n)
	return func(event string, _ int) {
		if event == "join" {
			wg.Done()
			wg.Wait()
		}
	}
}

// encodePNG encodes a generation's images, for a byte-exact comparison.
func encodePNG(t *testing.T, imgs []*image.NRGBA) [][]byte {
	t.Helper()
	var out [][]byte
	for _, img := range imgs {
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// batchRequests are generations of mixed prompts, seeds, step counts,
// sizes and guidance. The 48×32 one cannot share a call with the others
// (its latents differ in size); the unguided single image does not join
// at all (its calls carry one row); the unguided pair joins.
func batchRequests() []sampler.Request {
	return []sampler.Request{
		{Prompt: "a stone wall", Seed: 1, Width: 32, Height: 32, Steps: 3, Guidance: 6},
		{Prompt: "mossy bricks", NegativePrompt: "blurry", Seed: 2, Width: 32, Height: 32, Steps: 3, Guidance: 6, Scheduler: sampler.EulerAncestral},
		{Prompt: "sand dunes", Seed: 3, Width: 32, Height: 32, Steps: 4, Guidance: 5},
		{Prompt: "a stone wall", Seed: 4, Width: 48, Height: 32, Steps: 3, Guidance: 6},
		{Prompt: "ice", Seed: 5, Width: 32, Height: 32, Steps: 3},
		{Prompt: "lava", Seed: 6, Width: 32, Height: 32, Steps: 3, Count: 2},
	}
}

// TestBatchedImagesAreIdentical is issue 13's requirement: the same
// generations give the same PNG bytes with and without batching, on the
// CPU through real ONNX graphs, for models that take one timestep per row
// (diffusers-legacy, fp16: members at different steps share calls) and
// models that take one per call (optimum, sdxl: members in step).
func TestBatchedImagesAreIdentical(t *testing.T) {
	tests := []struct {
		flavour testmodels.Flavour
		// batched is each request's Report.Batched.
		batched []int
	}{
		// One group of the four 32×32 joiners; the 48×32 one alone.
		{testmodels.DiffusersLegacy, []int{4, 4, 4, 1, 0, 4}},
		{testmodels.FP16, []int{4, 4, 4, 1, 0, 4}},
		// The 4-step one has another schedule: a group of its own.
		{testmodels.Optimum, []int{3, 3, 1, 1, 0, 3}},
		{testmodels.SDXL, []int{3, 3, 1, 1, 0, 3}},
	}
	for _, tt := range tests {
		t.Run(string(tt.flavour), func(t *testing.T) {
			plain, batched := batchDiffuser(t, tt.flavour, 8)
			ctx := context.Background()
			reqs := batchRequests()
			want := make([][][]byte, len(reqs))
			for i, req := range reqs {
				imgs, _, err := sampler.Generate(ctx, plain, req)
				if err != nil {
					t.Fatal(err)
				}
				want[i] = encodePNG(t, imgs)
			}

			sampler.SetHook(batched.Batcher(), barrier(5))
			got := make([][][]byte, len(reqs))
			reps := make([]sampler.Report, len(reqs))
			errs := make([]error, len(reqs))
			var wg sync.WaitGroup
			for i, req := range reqs {
				req.Batcher = batched.Batcher()
				wg.Go(func() {
					var imgs []*image.NRGBA
					imgs, reps[i], errs[i] = sampler.Generate(ctx, batched, req)
					if errs[i] == nil {
						got[i] = encodePNG(t, imgs)
					}
				})
			}
			wg.Wait()
			for i := range reqs {
				if errs[i] != nil {
					t.Fatalf("request %d: %v", i, errs[i])
				}
				if reps[i].Batched != tt.batched[i] {
					t.Errorf("request %d: batched with %d generations, want %d", i, reps[i].Batched, tt.batched[i])
				}
				if len(got[i]) != len(want[i]) {
					t.Fatalf("request %d: %d images batched, %d alone", i, len(got[i]), len(want[i]))
				}
				for j := range got[i] {
					if !bytes.Equal(got[i][j], want[i][j]) {
						t.Errorf("request %d image %d: the PNG differs with batching", i, j)
					}
				}
			}
		})
	}
}

// TestBatchMemberCancelled cancels one of three batched generations in
// the middle: it stops with context.Canceled, and the other two finish
// (no deadlock) with the images they give alone.
func TestBatchMemberCancelled(t *testing.T) {
	plain, batched := batchDiffuser(t, testmodels.DiffusersLegacy, 4)
	reqs := []sampler.Request{
		{Prompt: "a stone wall", Seed: 1, Width: 32, Height: 32, Steps: 6, Guidance: 6},
		{Prompt: "mossy bricks", Seed: 2, Width: 32, Height: 32, Steps: 6, Guidance: 6},
		{Prompt: "sand dunes", Seed: 3, Width: 32, Height: 32, Steps: 6, Guidance: 6},
	}
	sampler.SetHook(batched.Batcher(), barrier(len(reqs)))
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make([][]byte, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		req.Batcher = batched.Batcher()
		c := ctx
		if i == 1 {
			c = cctx
			req.Progress = func(done, total int) {
				if done == 2 {
					cancel()
				}
			}
		}
		wg.Go(func() {
			imgs, _, err := sampler.Generate(c, batched, req)
			errs[i] = err
			if err == nil {
				got[i] = encodePNG(t, imgs)[0]
			}
		})
	}
	wg.Wait()
	if !errors.Is(errs[1], context.Canceled) {
		t.Errorf("the cancelled generation returned %v, want context.Canceled", errs[1])
	}
	for _, i := range []int{0, 2} {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		imgs, _, err := sampler.Generate(ctx, plain, reqs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[i], encodePNG(t, imgs)[0]) {
			t.Errorf("request %d: the PNG differs from the unbatched one after another member left", i)
		}
	}
}

// TestBatchOtherModel checks that a Batcher is refused for a model it
// does not belong to.
func TestBatchOtherModel(t *testing.T) {
	plain, batched := batchDiffuser(t, testmodels.Optimum, 4)
	req := sampler.Request{Prompt: "x", Width: 16, Height: 16, Steps: 1, Guidance: 5, Batcher: batched.Batcher()}
	if _, _, err := sampler.Generate(context.Background(), plain, req); err == nil {
		t.Error("a Batcher of another model was accepted")
	}
}

// TestBatchMemberCancelledWaiting cancels a generation while it waits in
// its group for the other's step: it returns context.Canceled, and the
// other goes on alone to the image it gives unbatched.
func TestBatchMemberCancelledWaiting(t *testing.T) {
	plain, batched := batchDiffuser(t, testmodels.Optimum, 4)
	a := sampler.Request{Prompt: "a stone wall", Seed: 1, Width: 32, Height: 32, Steps: 4, Guidance: 6}
	b := sampler.Request{Prompt: "mossy bricks", Seed: 2, Width: 32, Height: 32, Steps: 4, Guidance: 6}
	// In step, each round has one waiter: the first of the two to hand
	// in its step (the second makes the call).
	join := barrier(2)
	waits := make(chan struct{}, 16)
	sampler.SetHook(batched.Batcher(), func(event string, n int) {
		join(event, n)
		if event == "wait" {
			waits <- struct{}{}
		}
	})
	bctx, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	bDone := make(chan error, 1)
	a.Batcher, b.Batcher = batched.Batcher(), batched.Batcher()
	a.Progress = func(done, total int) {
		if done == 1 {
			// a holds back its second step; b hands its in and waits:
			// the second wait, after the first step's.
			<-waits
			<-waits
			cancelB()
			if err := <-bDone; !errors.Is(err, context.Canceled) {
				t.Errorf("the cancelled generation returned %v, want context.Canceled", err)
			}
		}
	}
	go func() {
		_, _, err := sampler.Generate(bctx, batched, b)
		bDone <- err
	}()
	got, rep, err := sampler.Generate(context.Background(), batched, a)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Batched != 2 {
		t.Errorf("batched with %d generations, want 2 for the first step", rep.Batched)
	}
	a.Batcher, a.Progress = nil, nil
	want, _, err := sampler.Generate(context.Background(), plain, a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encodePNG(t, got)[0], encodePNG(t, want)[0]) {
		t.Error("the PNG differs from the unbatched one after the other member left")
	}
}
