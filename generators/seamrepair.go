package generators

import (
	"context"
	"fmt"
	"image"
	"strconv"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/exemplar"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/pipeline"
)

// seamParams are a tileable's seam repair (tileable.repair_seams): after
// generating, the image is rolled by half its size along the tiled axes,
// so the wrap-around seams run through its middle, a band Band pixels
// wide across them is inpainted at Strength with a mask feathered by
// Feather, and the image is rolled back. The model's wrap-around variant
// keeps the result tileable, and outside the band the image is unchanged.
type seamParams struct {
	Band     int     `json:"band"`
	Strength float64 `json:"strength"`
	Feather  int     `json:"feather"`
}

// seamRepairStrength is the inpainting strength of a seam repair: enough
// to redraw the seam, little enough to keep the band's content.
const seamRepairStrength = 0.6

// seamRepairFor returns the repair of a w×h tileable: a band of an eighth
// of the shorter side (a multiple of 8, at least 16 pixels), feathered by
// a quarter of it.
func seamRepairFor(w, h int) *seamParams {
	band := max(min(w, h)/8/8*8, 16)
	return &seamParams{Band: band, Strength: seamRepairStrength, Feather: band / 4}
}

// seamMask is the repair's w×h mask in the rolled frame: white in a band
// centred on the middle column (x seams) and row (y seams).
func seamMask(w, h, band int, t manifests.Tile) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			in := t.X() && x >= w/2-band/2 && x < w/2+band/2 || t.Y() && y >= h/2-band/2 && y < h/2+band/2
			v := uint8(0)
			if in {
				v = 255
			}
			i := m.PixOffset(x, y)
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = v, v, v, 255
		}
	}
	return m
}

// repairSeams runs the seam repair on img with model m, the generation's
// request req (its prompt, steps and scheduler), and notes the seam
// scores before and after it.
func (j *genJob) repairSeams(ctx context.Context, r *pipeline.Run, m sampler.Model, req sampler.Request, img *image.NRGBA) (*image.NRGBA, error) {
	sp := j.p.RepairSeams
	t := manifests.Tile(j.p.Tile)
	edges, err := imageops.ParseTile(j.p.Tile)
	if err != nil {
		return nil, err
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	dx, dy := 0, 0
	if t.X() {
		dx = w / 2
	}
	if t.Y() {
		dy = h / 2
	}
	mask, _, err := prepareMask(seamMask(w, h, sp.Band, t), w, h, sp.Feather, edges)
	if err != nil {
		return nil, err
	}
	req.InitImage = exemplar.Roll(img, dx, dy)
	req.Mask = mask
	req.Strength = sp.Strength
	req.InitNoise = nil
	req.Width, req.Height = w, h
	out, _, err := sampler.Generate(ctx, m, req)
	if err != nil {
		return nil, fmt.Errorf("repair seams: %w", err)
	}
	repaired := exemplar.Roll(out[0], -dx, -dy)
	bx, by := imageops.Seams(imageops.FromImage(img))
	ax, ay := imageops.Seams(imageops.FromImage(repaired))
	note := fmt.Sprintf("band %d px", sp.Band)
	if t.X() {
		note += fmt.Sprintf(", x %.2f → %.2f", bx, ax)
	}
	if t.Y() {
		note += fmt.Sprintf(", y %.2f → %.2f", by, ay)
	}
	r.Note("seams.repair", note)
	return repaired, nil
}

// recipe entries of a seam repair.
func (sp *seamParams) recipe(extra map[string]string) {
	extra["repair_seams"] = "band " + strconv.Itoa(sp.Band) + " px, strength " + formatFloat(sp.Strength)
}
