package imageops

import (
	"bytes"
	"context"
	"image/color"
	"testing"
)

// reportCPU adds a cpu-ns/op metric (process CPU time per iteration,
// summed over all threads) next to the wall-clock ns/op.
func reportCPU(b *testing.B, start int64) {
	if start > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkDerivePBR1024 derives every PBR map from a 1024² albedo with
// wrap edges: the per-texture cost of the derive stage.
func BenchmarkDerivePBR1024(b *testing.B) {
	albedo := noise(1024, 1024, 3, 1)
	o := DefaultPBROptions()
	o.Edges = Edges{Wrap, Wrap}
	b.SetBytes(1024 * 1024)
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		if _, err := DerivePBR(context.Background(), albedo, o); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

func BenchmarkBlur1024Sigma64(b *testing.B) {
	f := noise(1024, 1024, 1, 1)
	b.SetBytes(1024 * 1024)
	cpu := processCPU()
	for b.Loop() {
		Blur(f, 64, Edges{Wrap, Wrap})
	}
	reportCPU(b, cpu)
}

func BenchmarkResize1024To2048Lanczos(b *testing.B) {
	f := noise(1024, 1024, 3, 1)
	b.SetBytes(2048 * 2048)
	cpu := processCPU()
	for b.Loop() {
		if _, err := Resize(f, 2048, 2048, Lanczos3, Edges{}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

func BenchmarkChromaKey1024(b *testing.B) {
	img, _, _ := discScene(1024, 1024, 400, 6, [3]float64{0.9, 0.7, 0.1}, [3]float64{0.1, 0.1, 0.1}, green)
	o := DefaultKeyOptions(color.NRGBA{0, 255, 0, 255})
	b.SetBytes(1024 * 1024)
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		if _, err := ChromaKey(img, o); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

func BenchmarkSeams1024(b *testing.B) {
	f := noise(1024, 1024, 3, 1)
	b.SetBytes(1024 * 1024)
	cpu := processCPU()
	for b.Loop() {
		Seams(f)
	}
	reportCPU(b, cpu)
}

func BenchmarkEncodePNGWithRecipe512(b *testing.B) {
	img := periodicTexture(512, 512, 3, 2, 1).NRGBA()
	rec := sampleRecipe()
	var buf bytes.Buffer
	cpu := processCPU()
	for b.Loop() {
		buf.Reset()
		if err := EncodePNG(&buf, img, &rec); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}
