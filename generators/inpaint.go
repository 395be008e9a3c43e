package generators

import (
	"fmt"
	"image"
	"math"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
)

// inpaintParams are a generation's inpainting settings (see
// manifests.InpaintOptions); the mask's content is in the stage's key
// through its Files.
type inpaintParams struct {
	Mask    string `json:"mask"`
	Feather int    `json:"feather,omitempty"`
}

// inpaintFrom returns the asset's inpainting settings, nil without an
// inpaint: block.
func inpaintFrom(a *manifests.Asset) *inpaintParams {
	if a.Inpaint == nil {
		return nil
	}
	return &inpaintParams{Mask: a.Inpaint.Mask, Feather: a.Inpaint.Feather}
}

// grayTolerance is how far apart a pixel's red, green and blue may be for
// a mask to count as grayscale (JPEG leaves small colour errors).
const grayTolerance = 8

// maskLevels reads a mask image's levels, 1 where the image is redrawn: a
// grayscale image gives its gray (white redraws), an image with
// transparency its alpha (transparent redraws, as image editors erase the
// part to redo). A colour image is refused.
func maskLevels(img *image.NRGBA) (*imageops.Float, string, error) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	f := imageops.NewFloat(w, h, 1)
	alpha, colour := false, false
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x < w; x++ {
			p := row[4*x : 4*x+4]
			if p[3] != 255 {
				alpha = true
			}
			lo, hi := min(p[0], p[1], p[2]), max(p[0], p[1], p[2])
			if hi-lo > grayTolerance {
				colour = true
			}
		}
	}
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride:]
		for x := 0; x < w; x++ {
			p := row[4*x : 4*x+4]
			if alpha {
				f.Pix[y*w+x] = 1 - float32(p[3])/255
			} else {
				// Rec. 601 luma, as image/color's gray model.
				f.Pix[y*w+x] = float32(19595*uint32(p[0])+38470*uint32(p[1])+7471*uint32(p[2])) / (255 << 16)
			}
		}
	}
	switch {
	case alpha:
		return f, "alpha", nil
	case colour:
		return nil, "", fmt.Errorf("it is a colour image: give a grayscale mask (white redraws, black keeps) or a transparent one (transparent redraws)")
	}
	return f, "gray", nil
}

// prepareMask turns a decoded mask file into the sampler's mask for a
// w×h generation: its levels (see maskLevels), scaled to w×h when its
// size differs (the returned note says so), feathered by a Gaussian of
// σ = feather/2 so the edge ramps over about feather pixels on either side
// (wrapping along the axes e wraps). Levels that round to 0 stay 0, so the
// kept region is kept exactly.
func prepareMask(img *image.NRGBA, w, h, feather int, e imageops.Edges) (*image.Gray, string, error) {
	f, format, err := maskLevels(img)
	if err != nil {
		return nil, "", err
	}
	note := format
	if mw, mh := f.W, f.H; mw != w || mh != h {
		if f, err = imageops.Resize(f, w, h, imageops.CatmullRom, e); err != nil {
			return nil, "", err
		}
		note += fmt.Sprintf(", scaled from %dx%d to %dx%d", mw, mh, w, h)
		if math.Abs(float64(mw)*float64(h)-float64(mh)*float64(w)) > 0.01*float64(mw)*float64(h) {
			note += " (its aspect ratio differs from the image's)"
		}
	}
	if feather > 0 {
		f = imageops.Blur(f, float64(feather)/2, e)
		note += fmt.Sprintf(", feathered %d px", feather)
	}
	m := f.Gray()
	redrawn := 0
	for _, v := range m.Pix {
		if v != 0 {
			redrawn++
		}
	}
	note += fmt.Sprintf(", redraws %.1f%% of the image", 100*float64(redrawn)/float64(len(m.Pix)))
	return m, note, nil
}

// mask reads and prepares the generation's inpainting mask, noting what
// was done to it in the stage's report.
func (j *genJob) mask(r *pipeline.Run, e imageops.Edges) (*image.Gray, error) {
	in := j.p.Inpaint
	img, err := readProjectImage(r.Root, in.Mask, j.maxSize)
	if err != nil {
		return nil, fmt.Errorf("inpaint mask %s: %w", in.Mask, err)
	}
	m, note, err := prepareMask(img, j.p.Width, j.p.Height, in.Feather, e)
	if err != nil {
		return nil, fmt.Errorf("inpaint mask %s: %w", in.Mask, err)
	}
	r.Note("inpaint.mask", note)
	return m, nil
}
