package generators

import (
	"bufio"
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
	"github.com/kiln-dev/kiln/models/sampler"
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
	return sourceStage(id, src, where, maxSize, memoryCheck{guard: newMemoryGuard(nil, nil)})
}

// sourceStage is SourceStage with the planner's memory check: once the
// header is read, the stage asks to be admitted with its estimate before
// it decodes the pixels.
func sourceStage(id, src, where string, maxSize int, mem memoryCheck) pipeline.Stage {
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
			release := func() {}
			defer func() { release() }()
			admit := func(cfg image.Config, format string) error {
				w, h, temp := cfg.Width, cfg.Height, decoderBytes(cfg, format)
				est := func(w, h int) (sampler.Memory, error) { return sourceMemory(imageFile{W: w, H: h, Temp: temp}), nil }
				m, _ := est(w, h)
				rel, err := mem.admit(ctx, r.Log, fmt.Sprintf("read the %dx%d image %s", w, h, src), m, func(fits func(sampler.Memory) bool) string {
					if fw, fh, ok := largestFit(w, h, 1, est, fits); ok {
						return fmt.Sprintf("shrink %s to %dx%d or less", src, fw, fh)
					}
					return ""
				})
				if err == nil {
					release = rel
				}
				return err
			}
			// The pipeline puts the stage's manifest position (where) in
			// front of the error.
			img, err := decodeImageFile(path, maxSize, admit)
			if err != nil {
				return err
			}
			out, err := r.Create(SourceOutput)
			if err != nil {
				return err
			}
			ew := &errWriter{w: bufio.NewWriterSize(out, 1<<16)}
			err = png.Encode(ew, img)
			if err == nil {
				err = ew.flush()
			}
			if err != nil {
				out.Close()
				if ew.err != nil {
					return ew.err
				}
				return fmt.Errorf("encode %s: %w", src, err)
			}
			return out.Close()
		},
	}
}

// errWriter writes to a buffered output and remembers the first write
// error, so it can be told from an encoding error.
type errWriter struct {
	w   *bufio.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

func (e *errWriter) flush() error {
	if err := e.w.Flush(); err != nil {
		if e.err == nil {
			e.err = err
		}
		return err
	}
	return nil
}

// DecodeImage reads a PNG or JPEG file into an NRGBA image. It checks the
// header first and refuses images wider or taller than maxSize, so a huge
// or hostile file cannot exhaust memory.
func DecodeImage(path string, maxSize int) (*image.NRGBA, error) {
	return decodeImageFile(path, maxSize, nil)
}

// decodeImageFile is DecodeImage with a check of the header's size
// (check, when not nil) between reading the header and decoding.
func decodeImageFile(path string, maxSize int, check func(cfg image.Config, format string) error) (*image.NRGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image: %w (check the path; it is relative to the project root)", err)
	}
	defer f.Close()
	return decodeImage(f, path, maxSize, check)
}

// decodeImage is decodeImageFile on an open stream; path names it in
// errors.
func decodeImage(r io.ReadSeeker, path string, maxSize int, check func(cfg image.Config, format string) error) (*image.NRGBA, error) {
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
	if check != nil {
		if err := check(cfg, format); err != nil {
			return nil, err
		}
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
