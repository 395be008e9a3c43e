package exemplar

import (
	"image"
	"math"
	"testing"
)

func TestFlipbookFrameMatchesFlipbookNoise(t *testing.T) {
	tests := []struct {
		name       string
		c, h, w    int
		o          FlipbookOptions
		seed       uint64
		wantErrFor int // a frame index FlipbookFrame must refuse
	}{
		{name: "still", c: 3, h: 16, w: 24, o: FlipbookOptions{Frames: 4, Motion: 0}, seed: 3, wantErrFor: 4},
		{name: "motion", c: 3, h: 32, w: 32, o: FlipbookOptions{Frames: 8, Motion: 0.5}, seed: 11, wantErrFor: -1},
		{name: "full circle", c: 4, h: 8, w: 8, o: FlipbookOptions{Frames: 12, Motion: 1}, seed: 7, wantErrFor: 12},
		{name: "drift", c: 3, h: 16, w: 16, o: FlipbookOptions{Frames: 5, Motion: 0.3, DriftX: 1, DriftY: -2}, seed: 5, wantErrFor: 99},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			all, err := FlipbookNoise(tc.seed, tc.c, tc.h, tc.w, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range all {
				got, err := FlipbookFrame(tc.seed, tc.c, tc.h, tc.w, tc.o, k)
				if err != nil {
					t.Fatalf("frame %d: %v", k, err)
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("frame %d value %d: %v, FlipbookNoise has %v", k, i, got[i], want[i])
					}
				}
			}
			if _, err := FlipbookFrame(tc.seed, tc.c, tc.h, tc.w, tc.o, tc.wantErrFor); err == nil {
				t.Errorf("frame %d of %d: no error", tc.wantErrFor, tc.o.Frames)
			}
		})
	}
}

func TestEstimateMemory(t *testing.T) {
	small := EstimateMemory(256, 256, MemoryOptions{Threads: 1})
	tests := []struct {
		name      string
		w, h      int
		o         MemoryOptions
		minNative int64 // at least this much ONNX Runtime memory
		sessions  int   // distinct patch levels, one session each
	}{
		// Every level of the default schedule at 256: two at full
		// resolution (about 128 bytes of features per pixel each).
		{name: "default", w: 256, h: 256, o: MemoryOptions{Threads: 1}, minNative: 2 * 128 * 256 * 256, sessions: 5},
		// An odd size cannot be pooled: every level runs at full
		// resolution, and levels of one patch size share a session.
		{name: "odd size", w: 255, h: 255, o: MemoryOptions{Threads: 1}, minNative: 4 * 128 * 255 * 255, sessions: 4},
		// 16-pixel exemplars allow no pooling either.
		{name: "small exemplars", w: 256, h: 256, o: MemoryOptions{Threads: 1, Exemplars: []image.Point{{16, 16}, {20, 16}}}, minNative: 4 * 128 * 256 * 256, sessions: 4},
		{name: "large", w: 2048, h: 2048, o: MemoryOptions{Threads: 1}, minNative: 2 * 128 * 2048 * 2048, sessions: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := EstimateMemory(tc.w, tc.h, tc.o)
			if m.Native < tc.minNative {
				t.Errorf("native %d bytes, want at least %d", m.Native, tc.minNative)
			}
			if want := int64(3 * tc.w * tc.h * 4); m.UNet != want+memLevelBuildBytes || m.Decode != want {
				t.Errorf("UNet call %d, decode %d bytes, want %d each (one image)", m.UNet, m.Decode, want)
			}
			threaded := EstimateMemory(tc.w, tc.h, MemoryOptions{Threads: 3, Exemplars: tc.o.Exemplars})
			if got := (threaded.Reserved - m.Reserved) / (2 * memThreadReserve); got != int64(tc.sessions) {
				t.Errorf("two more threads reserve for %d sessions, want %d", got, tc.sessions)
			}
		})
	}
	if big := EstimateMemory(2048, 2048, MemoryOptions{Threads: 1}); big.Native < 8*small.Native {
		t.Errorf("64 times the pixels: native %d bytes, want at least 8 times %d", big.Native, small.Native)
	}
	if g := EstimateMemory(256, 256, MemoryOptions{Threads: 1, Rows: 2}); g.UNet-memLevelBuildBytes != 2*(small.UNet-memLevelBuildBytes) {
		t.Errorf("guided UNet call %d bytes, want twice the images of %d", g.UNet, small.UNet)
	}
	if e := EstimateMemory(256, 256, MemoryOptions{Threads: 1, Exemplars: []image.Point{{100, 200}}}); e.Held != 3*100*200*4 {
		t.Errorf("the model holds %d bytes of its exemplar, want %d", e.Held, 3*100*200*4)
	}
}
