package sampler

import (
	"encoding/json"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuidanceEmbedding(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "sched.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Emb []struct {
			Guidance float64   `json:"guidance"`
			Dim      int       `json:"dim"`
			Values   []float64 `json:"values"`
		} `json:"guidance_embedding"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Emb) == 0 {
		t.Fatal("no guidance embedding reference")
	}
	for _, e := range ref.Emb {
		got := GuidanceEmbedding(e.Guidance, e.Dim)
		if len(got) != len(e.Values) {
			t.Fatalf("dim %d: %d values, want %d", e.Dim, len(got), len(e.Values))
		}
		for i := range got {
			// The arguments reach 7000 rad, where torch's float32 exp
			// (one ulp off a correctly rounded one) moves sin and cos
			// by up to a few 1e-4; the UNet's MLP does not notice.
			if math.Abs(float64(got[i])-e.Values[i]) > 1e-3 {
				t.Errorf("guidance %g dim %d [%d] = %.7g, want %.7g", e.Guidance, e.Dim, i, got[i], e.Values[i])
			}
		}
	}
}

func TestImageRoundTrip(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 37)
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	ten := ImageToTensor(img)
	if !sameShape(ten.Shape, []int64{1, 3, 2, 3}) {
		t.Fatalf("shape %v", ten.Shape)
	}
	for _, v := range ten.Data {
		if v < -1 || v > 1 {
			t.Fatalf("value %g outside [-1, 1]", v)
		}
	}
	back, err := TensorToImages(ten)
	if err != nil {
		t.Fatal(err)
	}
	for i := range img.Pix {
		if back[0].Pix[i] != img.Pix[i] {
			t.Fatalf("pixel byte %d: %d, want %d", i, back[0].Pix[i], img.Pix[i])
		}
	}
	// A generic image.Image (not NRGBA) goes through color conversion.
	gray := image.NewGray(image.Rect(0, 0, 2, 2))
	gray.Set(1, 1, color.Gray{Y: 255})
	gt := ImageToTensor(gray)
	if gt.Data[3] != 1 || gt.Data[0] != -1 {
		t.Errorf("gray image converted to %v", gt.Data)
	}
	// Clamping and rounding of decoder output.
	out, err := TensorToImages(Tensor{Shape: []int64{1, 3, 1, 1}, Data: []float32{-3, 2, float32(math.NaN())}})
	if err != nil {
		t.Fatal(err)
	}
	if p := out[0].Pix; p[0] != 0 || p[1] != 255 || p[2] != 0 || p[3] != 255 {
		t.Errorf("clamped pixel %v", p)
	}
	if _, err := TensorToImages(Tensor{Shape: []int64{1, 4, 1, 1}, Data: make([]float32, 4)}); err == nil {
		t.Error("4-channel decoder output accepted")
	}
}

func sdInfo() Info {
	return Info{LatentChannels: 4, VAEFactor: 8, ScalingFactor: 0.18215, DefaultSize: 512, Scheduler: sd15}
}

func TestPlan(t *testing.T) {
	init := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	tests := []struct {
		name   string
		info   Info
		req    Request
		want   string // error substring; empty for success
		check  func(*generation) bool
		checks string
	}{
		{"defaults", sdInfo(), Request{Prompt: "x"}, "", func(g *generation) bool {
			return g.width == 512 && g.height == 512 && g.lh == 64 && g.per == 4*64*64 &&
				g.count == 1 && g.batch == 1 && !g.guided && g.sch.Name() == Euler && len(g.sch.Timesteps()) == 20
		}, "512x512, one image, euler, 20 steps"},
		{"guided", sdInfo(), Request{Guidance: 7.5, Count: 3, BatchSize: 2}, "", func(g *generation) bool {
			return g.guided && g.count == 3 && g.batch == 2
		}, "guidance on, batches of 2"},
		{"no guidance at 1", sdInfo(), Request{Guidance: 1}, "", func(g *generation) bool { return !g.guided }, "guidance off"},
		{"no guidance with lcm", sdInfo(), Request{Guidance: 2, Scheduler: LCM}, "", func(g *generation) bool { return !g.guided }, "guidance off"},
		{"lcm unet never guided", Info{LatentChannels: 4, VAEFactor: 8, ScalingFactor: 0.18215, TimestepCondDim: 256,
			Scheduler: map[string]any{"_class_name": "LCMScheduler"}}, Request{Guidance: 8}, "", func(g *generation) bool {
			return !g.guided && g.sch.Name() == LCM && len(g.sch.Timesteps()) == 4
		}, "lcm, 4 steps, no batch doubling"},
		{"img2img size from image", sdInfo(), Request{InitImage: init, Strength: 0.5, Steps: 10}, "", func(g *generation) bool {
			return g.width == 64 && g.height == 48 && len(g.sch.Timesteps()) == 5
		}, "64x48, 5 of 10 steps"},
		{"img2img size mismatch", sdInfo(), Request{InitImage: init, Width: 64, Height: 64}, "init image is 64x48", nil, ""},
		{"not a multiple of 8", sdInfo(), Request{Width: 100, Height: 64}, "multiples of 8", nil, ""},
		{"bad info", Info{}, Request{}, "model info is incomplete", nil, ""},
		{"bad scheduler", sdInfo(), Request{Scheduler: "plms"}, `unknown scheduler "plms"`, nil, ""},
		{"bad count", sdInfo(), Request{Count: -2}, "count -2 out of range", nil, ""},
		{"nan guidance", sdInfo(), Request{Guidance: math.NaN()}, "guidance NaN", nil, ""},
	}
	for _, tt := range tests {
		g, err := plan(tt.info, tt.req, tt.req.InitImage != nil)
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !tt.check(g) {
			t.Errorf("%s: plan %+v, want %s", tt.name, g, tt.checks)
		}
	}
}

// TestToByte checks the conversion of decoder values to bytes against a
// plain statement of diffusers' rule (clamp (v/2 + 0.5) to [0, 1], times
// 255 in float32, round half to even) on every value near each rounding
// tie and on a sweep of float32 bit patterns.
func TestToByte(t *testing.T) {
	want := func(v float32) uint8 {
		x := v*0.5 + 0.5
		switch {
		case math.IsNaN(float64(x)), x <= 0:
			return 0
		case x >= 1:
			return 255
		}
		y := float64(x * 255)
		fl := math.Floor(y)
		switch d := y - fl; {
		case d > 0.5, d == 0.5 && int(fl)%2 == 1:
			return uint8(fl + 1)
		}
		return uint8(fl)
	}
	check := func(v float32) {
		if got, w := toByte(v), want(v); got != w {
			t.Fatalf("toByte(%g) = %d, want %d", v, got, w)
		}
	}
	for k := 0; k <= 255; k++ {
		tie := float32((float64(k)+0.5)/255*2 - 1)
		v := tie
		for range 64 {
			v = math.Nextafter32(v, -2)
		}
		for range 128 {
			check(v)
			v = math.Nextafter32(v, 2)
		}
	}
	for bits := uint64(0); bits < 1<<32; bits += 997 {
		check(math.Float32frombits(uint32(bits)))
	}
	// A large image goes through several goroutines; the bands meet
	// without a gap or an overlap.
	const h, w = 300, 301
	data := make([]float32, 3*h*w)
	for i := range data {
		data[i] = float32(i%509)/254 - 1
	}
	imgs, err := TensorToImages(Tensor{Shape: []int64{1, 3, h, w}, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < h*w; i++ {
		for c := 0; c < 3; c++ {
			if got, w := imgs[0].Pix[4*i+c], want(data[c*h*w+i]); got != w {
				t.Fatalf("pixel %d channel %d: %d, want %d", i, c, got, w)
			}
		}
		if imgs[0].Pix[4*i+3] != 255 {
			t.Fatalf("pixel %d alpha %d", i, imgs[0].Pix[4*i+3])
		}
	}
}
