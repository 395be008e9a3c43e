package imageops

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
)

// SheetGrid returns the grid a sheet of n frames uses when asked for the
// given number of columns: min(columns, n) columns and as many rows as
// needed. Exporters describing a sheet should use the same numbers.
func SheetGrid(n, columns int) (cols, rows int) {
	if n <= 0 || columns <= 0 {
		return 0, 0
	}
	cols = min(columns, n)
	return cols, (n + cols - 1) / cols
}

// SpriteSheet lays frames out left to right, top to bottom, in a grid of
// [SheetGrid](len(frames), columns) cells with no spacing, the layout game
// engines slice by frame size. All frames must have the same size; the
// sheet has the largest channel count among them, and unused cells are
// zero (transparent when there is alpha).
func SpriteSheet(frames []*Float, columns int) (*Float, error) {
	if len(frames) == 0 {
		return nil, fmt.Errorf("sprite sheet: no frames")
	}
	if columns < 1 {
		return nil, fmt.Errorf("sprite sheet: columns %d: want at least 1", columns)
	}
	fw, fh := frames[0].W, frames[0].H
	c := 0
	for i, f := range frames {
		if f.Empty() {
			return nil, fmt.Errorf("sprite sheet: frame %d is empty", i)
		}
		if f.W != fw || f.H != fh {
			return nil, fmt.Errorf("sprite sheet: frame %d is %dx%d, frame 0 is %dx%d; all frames must have one size", i, f.W, f.H, fw, fh)
		}
		c = max(c, f.C)
	}
	cols, rows := SheetGrid(len(frames), columns)
	sheet := NewFloat(cols*fw, rows*fh, c)
	for i, f := range frames {
		if f.C != c {
			f = Channels(f, c)
		}
		ox, oy := (i%cols)*fw, (i/cols)*fh
		for y := 0; y < fh; y++ {
			copy(sheet.Pix[((oy+y)*sheet.W+ox)*c:], f.Pix[y*fw*c:(y+1)*fw*c])
		}
	}
	return sheet, nil
}

// ContactOptions controls [ContactSheet].
type ContactOptions struct {
	// Columns is the number of thumbnails per row; 0 means a near-square
	// grid (ceil(sqrt(n)) columns).
	Columns int
	// Thumb is the largest side of a thumbnail in pixels: larger images
	// are shrunk (Lanczos3) to fit, smaller ones are left as they are.
	// 0 keeps every image at its own size.
	Thumb int
}

// Contact sheet look: dark neutral background, light labels in kiln's
// embedded 5×7 font, 8 px gaps.
var (
	contactBackground = color.NRGBA{30, 30, 30, 255}
	contactLabel      = color.NRGBA{220, 220, 220, 255}
)

const contactPad = 8

// ContactSheet arranges images in a grid, each with its label centred
// underneath ("seed 1234"), for an artist choosing among concept-art
// variations. Labels are drawn in an embedded 5×7 pixel font, scaled by
// an integer (cell width / 256, at least 1) so they stay readable under
// large thumbnails, and cut with "..." when wider than the cell;
// characters outside printable ASCII show as an empty box. Transparent
// images are drawn over the background. The output depends only on the
// inputs.
func ContactSheet(images []*Float, labels []string, o ContactOptions) (*image.NRGBA, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("contact sheet: no images")
	}
	if len(labels) != len(images) {
		return nil, fmt.Errorf("contact sheet: %d labels for %d images", len(labels), len(images))
	}
	if o.Columns < 0 || o.Thumb < 0 {
		return nil, fmt.Errorf("contact sheet: columns %d, thumb %d: want 0 or more", o.Columns, o.Thumb)
	}
	thumbs := make([]*image.NRGBA, len(images))
	cellW, cellH := 0, 0
	for i, img := range images {
		if img.Empty() {
			return nil, fmt.Errorf("contact sheet: image %d is empty", i)
		}
		t, err := Thumbnail(img, o.Thumb)
		if err != nil {
			return nil, fmt.Errorf("contact sheet: image %d: %w", i, err)
		}
		thumbs[i] = t.NRGBA()
		cellW, cellH = max(cellW, t.W), max(cellH, t.H)
	}
	scale := max(1, cellW/256)
	cellW = max(cellW, 3*glyphAdvance*scale)
	labelH := (glyphH + 4) * scale // text plus a gap above it
	cols := o.Columns
	if cols == 0 {
		cols = int(math.Ceil(math.Sqrt(float64(len(images)))))
	}
	cols, rows := SheetGrid(len(images), cols)
	w := contactPad + cols*(cellW+contactPad)
	h := contactPad + rows*(cellH+labelH+contactPad)
	sheet := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(contactBackground), image.Point{}, draw.Src)
	for i, t := range thumbs {
		x0 := contactPad + (i%cols)*(cellW+contactPad)
		y0 := contactPad + (i/cols)*(cellH+labelH+contactPad)
		tb := t.Bounds()
		at := image.Pt(x0+(cellW-tb.Dx())/2, y0+(cellH-tb.Dy())/2)
		draw.Draw(sheet, tb.Add(at), t, image.Point{}, draw.Over)
		label := fitLabel(labels[i], (cellW/scale+1)/glyphAdvance)
		drawText(sheet, x0+(cellW-textWidth(label, scale))/2, y0+cellH+4*scale, label, scale, contactLabel)
	}
	return sheet, nil
}

// Thumbnail returns f shrunk (Lanczos3) so that its larger side is thumb
// pixels, as ContactSheet shrinks its images; f itself when it is no
// larger or thumb is 0. A thumbnail passed to ContactSheet with the same
// Thumb is drawn as it is, so callers holding many large images can
// shrink each as they get it.
func Thumbnail(f *Float, thumb int) (*Float, error) {
	if thumb <= 0 || max(f.W, f.H) <= thumb {
		return f, nil
	}
	s := float64(thumb) / float64(max(f.W, f.H))
	w := max(1, int(math.Round(float64(f.W)*s)))
	h := max(1, int(math.Round(float64(f.H)*s)))
	return Resize(f, w, h, Lanczos3, Edges{})
}

// fitLabel cuts s to at most n characters, ending in "..." when cut.
func fitLabel(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 3 {
		return string(r[:n])
	}
	return string(r[:n-3]) + "..."
}
