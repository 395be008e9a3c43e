package generators

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // kind: image accepts JPEG sources.
	"image/png"
	"io"
	"os"
	"path/filepath"

	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/pipeline"
)

// sourceVersion changes whenever SourceStage would write different bytes
// for the same source file.
const sourceVersion = "1"

// SourceOutput is the output name of an image stage: the asset's pixels as
// a non-premultiplied RGBA PNG.
const SourceOutput = "image.png"

// SourceStage returns the stage of a hand-made image asset (kind: image).
// It reads src (relative to the project root), refuses images larger than
// maxSize on either side before decoding their pixels, and writes the image
// as a normalised RGBA PNG, so atlases and materials treat hand-made and
// generated art alike.
func SourceStage(id, src, where string, maxSize int) pipeline.Stage {
	return pipeline.Stage{
		ID:      id + ":source",
		Asset:   id,
		Kind:    "image.source",
		Version: sourceVersion,
		Params:  map[string]any{"max_size": maxSize},
		Files:   []string{src},
		Where:   where,
		Publish: map[string]string{SourceOutput: id + ".png"},
		Run: func(ctx context.Context, r *pipeline.Run) error {
			path, err := safepath.Join(r.Root, filepath.FromSlash(src))
			if err != nil {
				return fmt.Errorf("source %q: %w", src, err)
			}
			// The pipeline puts the stage's manifest position (where) in
			// front of the error.
			img, err := DecodeImage(path, maxSize)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				return fmt.Errorf("encode %s: %w", src, err)
			}
			return r.WriteFile(SourceOutput, buf.Bytes())
		},
	}
}

// DecodeImage reads a PNG or JPEG file into an NRGBA image. It checks the
// header first and refuses images wider or taller than maxSize, so a huge
// or hostile file cannot exhaust memory.
func DecodeImage(path string, maxSize int) (*image.NRGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image: %w (check the path; it is relative to the project root)", err)
	}
	defer f.Close()
	return decodeImage(f, path, maxSize)
}

// decodeImage is DecodeImage on an open stream; path names it in errors.
func decodeImage(r io.ReadSeeker, path string, maxSize int) (*image.NRGBA, error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w (kiln reads PNG and JPEG files)", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("read image %s: empty %s image (%dx%d)", path, format, cfg.Width, cfg.Height)
	}
	if cfg.Width > maxSize || cfg.Height > maxSize {
		return nil, fmt.Errorf("image %s is %dx%d, larger than the limit %d; shrink it or raise limits.max_image_size in kiln.yaml", path, cfg.Width, cfg.Height, maxSize)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read image %s: %w", path, err)
	}
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("decode %s image %s: %w", format, path, err)
	}
	if n, ok := img.(*image.NRGBA); ok && n.Rect.Min == (image.Point{}) {
		return n, nil
	}
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out, nil
}
