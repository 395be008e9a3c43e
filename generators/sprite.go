package generators

import (
	"context"
	"fmt"
	"image/color"
	"math"
	"path"
	"path/filepath"
	"strconv"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
)

// sheetVersion changes whenever the sheet stage would write different
// bytes for the same frames and parameters.
const sheetVersion = "1"

// sheetParams are the Params of a sprite-sheet's sheet stage: the
// post-processing of the generated frames. Changing them (key colour,
// palette, frame size, fps) never re-runs the diffusion.
type sheetParams struct {
	Frames      int     `json:"frames"`
	FrameWidth  int     `json:"frame_width"`
	FrameHeight int     `json:"frame_height"`
	FPS         float64 `json:"fps"`
	Loop        bool    `json:"loop"`
	Columns     int     `json:"columns"`
	// Key is nil for background: keep.
	Key *keyParams `json:"key,omitempty"`
	// PixelArt is nil unless pixel-art mode is on.
	PixelArt *pixelParams `json:"pixel_art,omitempty"`
	// Prompts are the per-frame prompts, for the metadata.
	Prompts []string `json:"prompts,omitempty"`
}

type keyParams struct {
	Color     string  `json:"color"`
	Threshold float64 `json:"threshold"`
	Softness  float64 `json:"softness"`
}

type pixelParams struct {
	Factor  int    `json:"factor"`
	Colors  int    `json:"colors,omitempty"`
	Palette string `json:"palette,omitempty"`
}

// sprite plans a kind: sprite-sheet asset: one generation stage per frame
// (frame 0 from the prompt, or every frame from from: art; later frames by
// img2img from their reference at strength 1 - consistency) and a sheet
// stage that keys, pixelates and lays out the frames and writes the
// animation metadata.
func (pl *planner) sprite(a *manifests.Asset) {
	so := a.Sprite
	if so == nil {
		so = &manifests.SpriteOptions{Frames: 1, FPS: 12, Loop: true, Consistency: 0.5, Background: "key",
			KeyColor: color.RGBA{255, 0, 255, 255}, KeyThreshold: 0.15, KeySoftness: 0.1}
	}
	gen, mf, ok := pl.base(a, string(manifests.KindSpriteSheet))
	if !ok {
		return
	}
	n := spriteFrames(a)
	factor := 1
	if so.PixelArt != nil && so.PixelArt.Factor > 1 {
		factor = so.PixelArt.Factor
	}
	// A frame_size without a size asks for frames of that size: generate
	// at frame_size × factor.
	if a.Size.IsZero() && !so.FrameSize.IsZero() {
		gen.Width, gen.Height = so.FrameSize.W*factor, so.FrameSize.H*factor
		what := "the generated size (frame_size"
		if factor > 1 {
			what += " × pixel_art.factor"
		}
		what += "): "
		if !pl.checkSize(a, "sprite.frame_size", what, gen.Width, gen.Height, mf.info) {
			return
		}
	}
	if gen.Width/factor < 1 || gen.Height/factor < 1 {
		pl.fail(a, "sprite.pixel_art.factor", fmt.Sprintf("pixel_art.factor %d is larger than the generated size %dx%d", factor, gen.Width, gen.Height), "lower the factor")
		return
	}
	sp := sheetParams{
		Frames:      n,
		FrameWidth:  gen.Width / factor,
		FrameHeight: gen.Height / factor,
		FPS:         so.FPS,
		Loop:        so.Loop,
		Columns:     so.Columns,
		Prompts:     so.FramePrompts,
	}
	if !so.FrameSize.IsZero() {
		sp.FrameWidth, sp.FrameHeight = so.FrameSize.W, so.FrameSize.H
	}
	if sp.FPS <= 0 {
		sp.FPS = 12
	}
	if sp.Columns <= 0 {
		sp.Columns = int(math.Ceil(math.Sqrt(float64(n))))
	}
	exemplarModel := mf.info.Family == familyExemplar
	// builtin:exemplar paints textures, not subjects on a backdrop: its
	// flipbooks keep their background unless the manifest asks for keying.
	keyed := so.Background != "keep" && (!exemplarModel || a.Has("sprite.background"))
	keyPhrase := ""
	if keyed {
		kc := color.NRGBA{so.KeyColor.R, so.KeyColor.G, so.KeyColor.B, 255}
		sp.Key = &keyParams{Color: hexColor(kc), Threshold: so.KeyThreshold, Softness: so.KeySoftness}
		if !exemplarModel {
			keyPhrase = ", isolated on a flat solid " + colorName(kc) + " background"
		}
	}
	if pa := so.PixelArt; pa != nil {
		sp.PixelArt = &pixelParams{Factor: max(pa.Factor, 1), Colors: pa.Colors, Palette: pa.Palette}
	}

	var fromRef *OutputRef
	fromWhere := a.At("from").String()
	if a.From != "" {
		ref, ok := pl.from(a)
		if !ok {
			return
		}
		fromRef = &ref
	}
	// Rounded so that consistency 0.9 is strength 0.1, not 0.0999….
	strength := math.Round((1-so.Consistency)*1e9) / 1e9
	// builtin:exemplar animates by noise: every frame is made from the
	// prompt, starting from one of a loop of related noises (a flipbook),
	// with motion 1 - consistency.
	flipbook := exemplarModel && fromRef == nil && n > 1
	if !flipbook && (n > 1 || fromRef != nil) && !pl.checkStrength(a, "sprite.consistency", "consistency "+formatFloat(so.Consistency), stepsHint("steps", "lower consistency"), strength, gen.Steps, gen.Scheduler) {
		return
	}
	frameRefs := make([]OutputRef, n)
	for i := 0; i < n; i++ {
		fp := gen
		fp.Extra = map[string]string{"frame": strconv.Itoa(i), "frames": strconv.Itoa(n)}
		if len(so.FramePrompts) > 0 {
			fp.Prompt = joinPrompt(a.Prompt, so.FramePrompts[i])
		} else if i > 0 && !flipbook {
			// Frames of one prompt differ only by their noise; each
			// gets its own seed so they are not all alike.
			fp.Seed = gen.Seed + int64(i)
		}
		fp.Prompt += keyPhrase
		var init *OutputRef
		initWhere := ""
		switch {
		case flipbook:
			fp.Flipbook = &flipbookParams{Frame: i, Frames: n, Motion: strength}
		case fromRef != nil:
			init, initWhere = fromRef, fromWhere
			fp.Init = initName(a.From, a.Pick, pl.p.Asset(a.From))
			fp.Strength = strength
		case i > 0:
			init = &OutputRef{FrameStage(a.ID, 0, n), ImageOutput}
			fp.Init = a.ID + "#0"
			fp.Strength = strength
		}
		s := pl.genStage(a, FrameStage(a.ID, i, n), "sprite.frame", fp, mf, init, initWhere)
		frameRefs[i] = OutputRef{s.ID, ImageOutput}
		pl.stages = append(pl.stages, s)
	}

	st := pl.stage(a, SheetStage(a.ID), "sprite.sheet", sheetVersion, false)
	st.Params = sp
	for _, f := range frameRefs {
		st.Deps = append(st.Deps, f.Stage)
	}
	if sp.PixelArt != nil && sp.PixelArt.Palette != "" {
		st.Files = []string{sp.PixelArt.Palette}
	}
	st.Publish = map[string]string{SheetOutput: MainPath(a.ID), AnimationOutput: AnimationPath(a.ID)}
	for i := 0; i < n; i++ {
		st.Publish[FrameOutput(i, n)] = FramePath(a.ID, i, n)
	}
	id, maxSize, mem, step := a.ID, pl.lim.MaxImageSize, pl.mem, sizeStep(mf.info)
	st.Run = func(ctx context.Context, r *pipeline.Run) error {
		if sz, ok := inputSize(r, frameRefs[0], maxSize); ok {
			release, err := admitSheet(ctx, r.Log, mem, a, sp, sz, step)
			if err != nil {
				return err
			}
			defer release()
		}
		return buildSheet(ctx, r, id, frameRefs, sp, maxSize)
	}
	pl.stages = append(pl.stages, st)
}

// joinPrompt adds a frame's prompt to the asset's.
func joinPrompt(base, frame string) string {
	switch {
	case base == "":
		return frame
	case frame == "":
		return base
	}
	return base + ", " + frame
}

// buildSheet runs a sheet stage.
func buildSheet(ctx context.Context, r *pipeline.Run, id string, frameRefs []OutputRef, sp sheetParams, maxSize int) error {
	n := len(frameRefs)
	frames := make([]*imageops.Float, n)
	recipes := make([]*imageops.Recipe, n)
	var keyOpts imageops.KeyOptions
	if sp.Key != nil {
		kc, err := imageops.ParseColor(sp.Key.Color)
		if err != nil {
			return err
		}
		keyOpts = imageops.DefaultKeyOptions(kc)
		keyOpts.Threshold, keyOpts.Softness = sp.Key.Threshold, sp.Key.Softness
	}
	var palette imageops.Palette
	if pa := sp.PixelArt; pa != nil && pa.Palette != "" {
		p, err := safepath.Join(r.Root, filepath.FromSlash(pa.Palette))
		if err != nil {
			return fmt.Errorf("palette %q: %w", pa.Palette, err)
		}
		if palette, err = imageops.LoadPalette(p); err != nil {
			return err
		}
	}
	steps := n + 1
	for i, ref := range frameRefs {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, rec, err := readInput(r, ref, maxSize)
		if err != nil {
			return err
		}
		f := imageops.FromImage(img)
		if sp.Key != nil {
			if f, err = imageops.ChromaKey(f, keyOpts); err != nil {
				return fmt.Errorf("frame %d: %w", i, err)
			}
		} else {
			f = imageops.Channels(f, 3)
		}
		if pa := sp.PixelArt; pa != nil {
			if pa.Factor > 1 {
				if f, err = imageops.DownscaleNearest(f, pa.Factor); err != nil {
					return fmt.Errorf("frame %d: %w", i, err)
				}
			}
			if f.W != sp.FrameWidth || f.H != sp.FrameHeight {
				f = resizeNearest(f, sp.FrameWidth, sp.FrameHeight)
			}
			if sp.Key != nil {
				f = imageops.ThresholdAlpha(f, 0.5)
			}
		} else if f.W != sp.FrameWidth || f.H != sp.FrameHeight {
			if f, err = imageops.Resize(f, sp.FrameWidth, sp.FrameHeight, imageops.Lanczos3, imageops.Edges{}); err != nil {
				return fmt.Errorf("frame %d: %w", i, err)
			}
		}
		frames[i], recipes[i] = f, rec
		r.Progress(i+1, steps)
	}
	if pa := sp.PixelArt; pa != nil && (pa.Colors > 0 || palette != nil) {
		if palette == nil {
			// One palette for the whole animation, so colours do not
			// flicker from frame to frame.
			all, err := imageops.SpriteSheet(frames, sp.Columns)
			if err != nil {
				return err
			}
			if palette, err = imageops.MedianCut(all, pa.Colors); err != nil {
				palette = nil // no visible pixels: nothing to quantise
			}
		}
		if palette != nil {
			for i, f := range frames {
				q, err := imageops.Quantize(f, palette, false)
				if err != nil {
					return fmt.Errorf("frame %d: %w", i, err)
				}
				frames[i] = q
			}
		}
	}
	transparent := false
	if sp.Key != nil {
		// Report what the key removed, not what was asked: a key colour
		// the frames do not have leaves them opaque.
		share := keyedShare(frames)
		transparent = share > 0
		r.Note("keyed", fmt.Sprintf("%.1f%%", 100*share))
		if !transparent {
			w := fmt.Sprintf("background: key %s removed no pixel: no frame has a background of that colour; "+
				"give the colour of the frames' background, or background: keep", sp.Key.Color)
			r.Note("warning", w)
			r.Log.Warn(w)
		}
	}
	sheet, err := imageops.SpriteSheet(frames, sp.Columns)
	if err != nil {
		return err
	}

	cols, rows := imageops.SheetGrid(n, sp.Columns)
	base := path.Base(id)
	anim := &Animation{
		Version:     AnimationVersion,
		Name:        id,
		FPS:         sp.FPS,
		Loop:        sp.Loop,
		FrameWidth:  sp.FrameWidth,
		FrameHeight: sp.FrameHeight,
		Transparent: transparent,
		Sheet: AnimationSheet{File: base + ".png", Output: SheetOutput, Columns: cols, Rows: rows,
			Width: sheet.W, Height: sheet.H},
	}
	post := func(rec *imageops.Recipe) *imageops.Recipe {
		out := cloneRecipe(rec)
		if sp.Key != nil {
			out.Extra["background"] = "key " + sp.Key.Color
		} else {
			out.Extra["background"] = "keep"
		}
		if pa := sp.PixelArt; pa != nil {
			out.Extra["pixel_art"] = strconv.Itoa(pa.Factor)
			if pa.Colors > 0 {
				out.Extra["colors"] = strconv.Itoa(pa.Colors)
			}
			if pa.Palette != "" {
				out.Extra["palette"] = pa.Palette
			}
		}
		out.Extra["frame_size"] = fmt.Sprintf("%dx%d", sp.FrameWidth, sp.FrameHeight)
		return out
	}
	for i, f := range frames {
		name := FrameOutput(i, n)
		if err := writePNG(r, name, f.NRGBA(), post(recipes[i])); err != nil {
			return err
		}
		fr := AnimationFrame{Name: id + "/" + name[:len(name)-len(".png")], File: base + "/" + name, Output: name,
			X: (i % cols) * sp.FrameWidth, Y: (i / cols) * sp.FrameHeight}
		if i < len(sp.Prompts) {
			fr.Prompt = sp.Prompts[i]
		}
		anim.Frames = append(anim.Frames, fr)
	}
	sr := post(recipes[0])
	sr.Extra["sheet"] = fmt.Sprintf("%d frames, %dx%d grid", n, cols, rows)
	if err := writePNG(r, SheetOutput, sheet.NRGBA(), sr); err != nil {
		return err
	}
	data, err := anim.encode()
	if err != nil {
		return err
	}
	if err := r.WriteFile(AnimationOutput, data); err != nil {
		return err
	}
	r.Progress(steps, steps)
	return nil
}

// resizeNearest resamples f to w×h by picking, for each output pixel, the
// input pixel under its centre: pixel art stays crisp and keeps its
// palette.
func resizeNearest(f *imageops.Float, w, h int) *imageops.Float {
	out := imageops.NewFloat(w, h, f.C)
	for y := 0; y < h; y++ {
		sy := min(int((float64(y)+0.5)*float64(f.H)/float64(h)), f.H-1)
		for x := 0; x < w; x++ {
			sx := min(int((float64(x)+0.5)*float64(f.W)/float64(w)), f.W-1)
			copy(out.Pix[(y*w+x)*f.C:(y*w+x+1)*f.C], f.Pix[(sy*f.W+sx)*f.C:])
		}
	}
	return out
}

// hexColor formats an opaque colour as "#rrggbb".
func hexColor(c color.NRGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// colorName names a key colour for a prompt: the nearest of the colours
// text encoders know well.
func colorName(c color.NRGBA) string {
	names := []struct {
		name    string
		r, g, b float64
	}{
		{"magenta", 255, 0, 255}, {"green", 0, 255, 0}, {"blue", 0, 0, 255}, {"cyan", 0, 255, 255},
		{"yellow", 255, 255, 0}, {"red", 255, 0, 0}, {"white", 255, 255, 255}, {"black", 0, 0, 0},
		{"gray", 128, 128, 128}, {"orange", 255, 128, 0}, {"purple", 128, 0, 128},
	}
	best, bestD := names[0].name, math.Inf(1)
	for _, n := range names {
		dr, dg, db := float64(c.R)-n.r, float64(c.G)-n.g, float64(c.B)-n.b
		if d := dr*dr + dg*dg + db*db; d < bestD {
			best, bestD = n.name, d
		}
	}
	return best
}

// keyedShare is the share of the frames' pixels that keying made at least
// partly transparent.
func keyedShare(frames []*imageops.Float) float64 {
	var keyed, total int
	for _, f := range frames {
		if f.C != 4 {
			continue
		}
		for i := 3; i < len(f.Pix); i += 4 {
			if f.Pix[i] < 1 {
				keyed++
			}
		}
		total += f.W * f.H
	}
	if total == 0 {
		return 0
	}
	return float64(keyed) / float64(total)
}
