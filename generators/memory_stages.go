package generators

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/pipeline"
)

// Each stage kind asks to be admitted (memoryCheck.admit) with its
// estimate before it decodes or allocates anything large. The sizes of
// the images a stage reads come from their headers; an image whose
// header cannot be read, or which is over the size limit, is left out:
// decoding it then fails with its own error.

// headerSize reads an image file's header; ok is false when it cannot,
// or when the image is empty or over maxSize.
func headerSize(path string, maxSize int) (imageFile, bool) {
	f, err := os.Open(path)
	if err != nil {
		return imageFile{}, false
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxSize || cfg.Height > maxSize {
		return imageFile{}, false
	}
	return imageFile{W: cfg.Width, H: cfg.Height, Temp: decoderBytes(cfg, format)}, true
}

// inputSize is headerSize of a dependency's output.
func inputSize(r *pipeline.Run, ref OutputRef, maxSize int) (imageFile, bool) {
	path, err := r.Input(ref.Stage, ref.Output)
	if err != nil {
		return imageFile{}, false
	}
	return headerSize(path, maxSize)
}

// admit estimates the generation from its parameters and the sizes of
// its exemplars and init image, and asks to be admitted with it.
func (j *genJob) admit(ctx context.Context, r *pipeline.Run) (func(), error) {
	if j.mem.guard == nil {
		return func() {}, nil
	}
	var exemplars []imageFile
	var sizes []image.Point
	for _, f := range j.p.Exemplars {
		if path, err := safepath.Join(r.Root, filepath.FromSlash(f)); err == nil {
			if e, ok := headerSize(path, j.maxSize); ok {
				exemplars = append(exemplars, e)
				sizes = append(sizes, e.size())
			}
		}
	}
	var init imageFile
	if j.init != nil {
		init, _ = inputSize(r, *j.init, j.maxSize)
	}
	mm, err := memoryOf(j.models, j.model, memoryQuery{exemplars: sizes, prompt: j.p.Prompt, seed: uint64(j.modelSeed()), tile: manifests.Tile(j.p.Tile)})
	if err != nil {
		// Opening the model fails with this problem, in its context.
		return func() {}, nil
	}
	est := func(w, h int) (sampler.Memory, error) { return generationMemory(&j.p, w, h, mm, exemplars, init) }
	m, err := est(j.p.Width, j.p.Height)
	if err != nil {
		return nil, err
	}
	var lower func(func(sampler.Memory) bool) string
	if j.advise != nil {
		lower = func(fits func(sampler.Memory) bool) string { return j.advise(est, fits) }
	}
	var keep func(string) bool
	if mm.resident != nil {
		if paths := mm.resident(j.p.Width, j.p.Height); paths != nil {
			keep = func(p string) bool { return slices.Contains(paths, p) }
		}
	}
	what := fmt.Sprintf("generate %dx%d with model %q", j.p.Width, j.p.Height, j.model)
	if j.init != nil && j.p.Strength <= 0 {
		what = fmt.Sprintf("fit the init image to %dx%d", j.p.Width, j.p.Height)
	}
	return j.mem.admitKeeping(ctx, r.Log, what, m, lower, keep)
}

// admitSheet estimates a sprite-sheet's sheet stage on frames generated
// at gen, and asks to be admitted with it. Advice lowers the frame count
// first (each frame is kept until the sheet is written), then the size.
func admitSheet(ctx context.Context, log *slog.Logger, mem memoryCheck, a *manifests.Asset, sp sheetParams, gen imageFile, step int) (func(), error) {
	palette := sp.PixelArt != nil && (sp.PixelArt.Colors > 0 || sp.PixelArt.Palette != "")
	est := func(n, gw, gh int) sampler.Memory {
		cols := sp.Columns
		if !a.Has("sprite.columns") {
			cols = int(math.Ceil(math.Sqrt(float64(n))))
		}
		cols, rows := imageops.SheetGrid(n, cols)
		// The frame size follows the generated size unless frame_size
		// fixes it.
		fw, fh := sp.FrameWidth*gw/max(gen.W, 1), sp.FrameHeight*gh/max(gen.H, 1)
		if a.Has("sprite.frame_size") {
			fw, fh = sp.FrameWidth, sp.FrameHeight
		}
		return sheetMemory(n, gen.at(gw, gh), max(fw, 1), max(fh, 1), cols, rows, sp.Key != nil, palette)
	}
	what := fmt.Sprintf("build the sheet of %d frames of %dx%d (generated at %dx%d)", sp.Frames, sp.FrameWidth, sp.FrameHeight, gen.W, gen.H)
	return mem.admit(ctx, log, what, est(sp.Frames, gen.W, gen.H), func(fits func(sampler.Memory) bool) string {
		lo, hi := 0, sp.Frames-1 // lo frames fit (0: none known)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if fits(est(mid, gen.W, gen.H)) {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		size := sizeAdvice(a, gen.W, gen.H, step, func(w, h int) (sampler.Memory, error) { return est(sp.Frames, w, h), nil }, fits)
		switch {
		case lo > 0 && size != "":
			return fmt.Sprintf("lower sprite.frames (%s) to %d or fewer, or %s", a.At("sprite.frames"), lo, size)
		case lo > 0:
			return fmt.Sprintf("lower sprite.frames (%s) to %d or fewer", a.At("sprite.frames"), lo)
		}
		return size
	})
}
