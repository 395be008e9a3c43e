package sampler

import "testing"

func TestEstimateMemory(t *testing.T) {
	sd := Info{LatentChannels: 4, VAEFactor: 8, ScalingFactor: 0.18215}
	pixel := Info{LatentChannels: 3, VAEFactor: 1, ScalingFactor: 1}
	const mb = 1 << 20
	model := func(rows int) ModelMemory {
		return ModelMemory{UNet: int64(rows) * mb, Decode: 2 * mb, Encode: 3 * mb, Native: 100 * mb, Reserved: 10 * mb}
	}
	tests := []struct {
		name      string
		info      Info
		q         MemoryQuery
		wantLive  int64
		wantChurn int64
	}{
		// 512x512 on a VAE model: 64x64x4 latents (64 KiB); decoding
		// dominates: one image's latents, the decoder's output, the
		// image as RGBA.
		{name: "txt2img", info: sd, q: MemoryQuery{Request: Request{Width: 512, Height: 512, Steps: 20}},
			wantLive: 65536 + max(0, 2*65536+65536+condBytes(1), 65536+4*512*512), wantChurn: 2*65536 + 65536 + condBytes(1) + 65536},
		// Guidance doubles the UNet's buffers and what its calls take.
		{name: "guided", info: sd, q: MemoryQuery{Request: Request{Width: 512, Height: 512, Steps: 20, Guidance: 7.5}, Model: model},
			wantLive:  65536 + max(4*65536+65536+2*mb+condBytes(2), 65536+2*mb+4*512*512),
			wantChurn: 4*65536 + 65536 + 2*mb + condBytes(2) + 20*2*mb + 65536 + 2*mb},
		// Pixel-space models have full-size latents; img2img adds the
		// init image as a tensor, the encoder's outputs and the noise.
		{name: "img2img", info: pixel, q: MemoryQuery{Request: Request{Width: 256, Height: 256, Steps: 10, Strength: 0.5}, Img2Img: true, Model: model},
			wantLive:  3*256*256*4*2 + 3*mb + 3*256*256*4 + 3*256*256*4,
			wantChurn: (3*256*256*4 + 3*mb + 2*3*256*256*4) + (3*256*256*4*3 + mb + condBytes(1)) + 5*mb + (3*256*256*4 + 2*mb)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := EstimateMemory(tc.info, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if m.Live != tc.wantLive || m.Churn != tc.wantChurn {
				t.Errorf("live %d, churn %d; want %d, %d", m.Live, m.Churn, tc.wantLive, tc.wantChurn)
			}
			if tc.q.Model != nil && (m.Native != 100*mb || m.Reserved != 10*mb) {
				t.Errorf("native %d, reserved %d: not the model's", m.Native, m.Reserved)
			}
		})
	}
	bad := []struct {
		name string
		q    MemoryQuery
	}{
		{name: "size not a multiple of the VAE factor", q: MemoryQuery{Request: Request{Width: 500, Height: 512}}},
		{name: "unknown scheduler", q: MemoryQuery{Request: Request{Width: 512, Height: 512, Scheduler: "nope"}}},
		{name: "img2img without a size", q: MemoryQuery{Img2Img: true}},
	}
	for _, tc := range bad {
		if _, err := EstimateMemory(sd, tc.q); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestEstimateMemoryBatched checks that a generation that may share its
// calls counts its share of the stacked buffers, and that one that never
// joins a group (one row per call) counts nothing more.
func TestEstimateMemoryBatched(t *testing.T) {
	info := Info{LatentChannels: 4, VAEFactor: 8, ScalingFactor: 0.18215}
	for _, tt := range []struct {
		name string
		req  Request
		more bool
	}{
		{"guided", Request{Width: 512, Height: 512, Guidance: 7.5}, true},
		{"two images", Request{Width: 512, Height: 512, Count: 2}, true},
		{"one row", Request{Width: 512, Height: 512}, false},
		{"chunked", Request{Width: 512, Height: 512, Count: 3, BatchSize: 1, Guidance: 7.5}, false},
	} {
		alone, err := EstimateMemory(info, MemoryQuery{Request: tt.req})
		if err != nil {
			t.Fatal(err)
		}
		shared, err := EstimateMemory(info, MemoryQuery{Request: tt.req, Batched: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := shared.Churn > alone.Churn; got != tt.more {
			t.Errorf("%s: batched estimate %+v, alone %+v: larger %v, want %v", tt.name, shared, alone, got, tt.more)
		}
	}
}
