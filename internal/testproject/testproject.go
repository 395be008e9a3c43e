// Package testproject writes kiln projects for tests and benchmarks: a
// kiln.yaml, manifests of image assets and the small PNGs they use. The
// no-op build benchmark (1,000 and 10,000 assets) is generated with it.
package testproject

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
)

// Config is the kiln.yaml the generated projects use.
const Config = "version: 1\noutput: out\ncache: .kiln/cache\n"

// ImagePath returns the project-relative path of asset i's source image.
func ImagePath(i int) string { return fmt.Sprintf("art/%03d/img%05d.png", i/100, i) }

// AssetID returns the id of asset i.
func AssetID(i int) string { return fmt.Sprintf("set%02d/img%05d", i%97, i) }

// WriteImages writes a project with n image assets spread over files
// manifests into dir, each asset a distinct 8x8 PNG.
func WriteImages(dir string, n, files int) error {
	if files < 1 {
		files = 1
	}
	if err := write(dir, "kiln.yaml", []byte(Config)); err != nil {
		return err
	}
	bodies := make([]strings.Builder, files)
	for f := range bodies {
		bodies[f].WriteString("version: 1\nassets:\n")
	}
	for i := 0; i < n; i++ {
		b := &bodies[i%files]
		fmt.Fprintf(b, "  - id: %s\n    kind: image\n    image:\n      source: %s\n", AssetID(i), ImagePath(i))
		if err := write(dir, ImagePath(i), PNG(i)); err != nil {
			return err
		}
	}
	for f := range bodies {
		if err := write(dir, fmt.Sprintf("manifests/part%02d.kiln.yaml", f), []byte(bodies[f].String())); err != nil {
			return err
		}
	}
	return nil
}

// PNG returns an 8x8 PNG whose pixels depend on seed, so every asset has
// its own content.
func PNG(seed int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(seed), uint8(seed >> 8), uint8(x*32 + y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err) // encoding an in-memory NRGBA cannot fail
	}
	return buf.Bytes()
}

func write(dir, rel string, data []byte) error {
	path := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
