package manifests

import (
	"errors"
	"fmt"
	"io/fs"
)

// InpaintOptions are an asset's inpaint: block: redraw part of another
// asset's image and keep the rest of it exactly.
type InpaintOptions struct {
	// From is the id of the asset whose image is inpainted (also set as
	// the asset's From, so that it is built first like an img2img source).
	From string
	// Mask is the project-relative mask image: a grayscale image, white
	// where the image is redrawn and black where it is kept, or an image
	// with transparency, transparent where it is redrawn (as an eraser
	// leaves it) and opaque where it is kept.
	Mask string
	// Strength is how far the redrawn region departs from the image, in
	// [0, 1]; 1 (the default) redraws it from noise.
	Strength float64
	// Feather blurs the mask's edge over this many pixels (0: a hard edge).
	Feather int
}

// maxFeather bounds inpaint.feather, in pixels.
const maxFeather = 256

// inpaintSpec is the table of the inpaint: block.
func inpaintSpec() *spec {
	return obj("Inpainting: redraw the masked part of another asset's image and keep the rest exactly.",
		fld("from", idSpec("Asset whose image is inpainted.")).req("add from: ASSET_ID"),
		fld("mask", imagePath("Mask image, project-relative: grayscale, white where the image is redrawn and black where it is kept; or with transparency, transparent where it is redrawn.")).req("add mask: art/NAME.png"),
		fld("strength", unit("How far the redrawn region departs from the image (1: from noise).").dflt(1.0)),
		fld("feather", integer("Blur the mask's edge over this many pixels.").rng(0, maxFeather).dflt(0)),
	).named("inpaint")
}

// resolveInpaint reads the asset's inpaint: block into a, which then
// behaves as img2img from inpaint.from at inpaint.strength. o is the asset
// as written, b the asset merged with its defaults.
func (r *resolver) resolveInpaint(a *Asset, path string, o *object, b binder) {
	if !o.has("inpaint") || a.Kind != KindTexture && a.Kind != KindTileable && a.Kind != KindConceptArt {
		return // a block on another kind is reported by the tables
	}
	for _, f := range []string{"from", "strength"} {
		if o.has(f) {
			r.add(o.keyAt(f), join(path, f), f+" and inpaint cannot both be set",
				"inpaint has its own from and strength: move the value into the inpaint block")
		}
	}
	in := b.sub("inpaint")
	a.Inpaint = &InpaintOptions{From: in.str("from"), Mask: in.str("mask"), Strength: in.float("strength"), Feather: in.int("feather")}
	a.From, a.Strength = a.Inpaint.From, a.Inpaint.Strength
	if pos, ok := a.Where[join("inpaint", "from")]; ok {
		a.Where["from"] = pos
	}
}

// maskFileErrors reports each inpaint mask that does not exist, at its
// inpaint.mask value, as exemplarFileErrors does exemplars.
func (r *resolver) maskFileErrors(fsys, list fs.FS) ErrorList {
	var errs ErrorList
	for _, a := range r.proj.Assets {
		if a.Inpaint == nil || a.Inpaint.Mask == "" {
			continue
		}
		if _, err := fs.Stat(fsys, a.Inpaint.Mask); err == nil || !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		hint := "add the file or fix the path in the manifest"
		if near := nearFile(list, a.Inpaint.Mask); near != "" {
			hint = fmt.Sprintf("did you mean %q?", near)
		}
		errs = append(errs, &Error{Pos: a.At("inpaint.mask"), Field: join(r.entries[a], "inpaint.mask"),
			Msg: fmt.Sprintf("mask file %s not found", a.Inpaint.Mask), Hint: hint})
	}
	return errs
}
