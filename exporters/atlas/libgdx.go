package atlas

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// libgdxAtlas writes the libGDX / Spine texture atlas text format (the
// "new" format read by libGDX 1.9.13 and later and by the Spine 4
// runtimes): per page a header with size, format, filter, repeat and pma,
// then one entry per region with bounds, offsets (only when trimmed),
// rotate (only when rotated), split (9-slice borders, only when set) and
// index (the frame number, -1 for stills). The format has no origin, so
// pivots are not written.
//
// Regions of animation frames are named after their animation (sheet/name)
// and carry the frame number as index, so TextureAtlas.findRegions returns
// them in play order; still sprites are named after the sprite. Offsets
// follow libGDX: x from the left, y from the bottom of the original image.
// Rotated regions are stored 90° counter-clockwise, as libGDX expects.
func (a *Atlas) libgdxAtlas(images []string) ([]byte, error) {
	var errs []error
	filter := "Linear, Linear"
	if a.Settings.Filter == FilterNearest {
		filter = "Nearest, Nearest"
	}
	var b bytes.Buffer
	for p, page := range a.Pages {
		if p > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(images[p] + "\n")
		fmt.Fprintf(&b, "size: %d, %d\n", page.Rect.Dx(), page.Rect.Dy())
		b.WriteString("format: RGBA8888\n")
		b.WriteString("filter: " + filter + "\n")
		b.WriteString("repeat: none\n")
		if a.Settings.PremultiplyAlpha {
			b.WriteString("pma: true\n")
		}
		for _, k := range a.pageFrames(p) {
			f := &a.Frames[k]
			name := f.Name
			if f.Animation != "" {
				name = fullAnimName(f.Sheet, f.Animation)
			}
			// A colon would make the reader take the name for a field.
			if strings.ContainsRune(name, ':') {
				errs = append(errs, fmt.Errorf("libgdx format: region name %q contains a colon, which the atlas reader takes for a field; rename the sprite or animation", name))
				continue
			}
			b.WriteString(name + "\n")
			fmt.Fprintf(&b, "  bounds: %d, %d, %d, %d\n", f.X, f.Y, f.W, f.H)
			if f.Trimmed() {
				bottom := f.SourceH - f.OffsetY - f.H
				fmt.Fprintf(&b, "  offsets: %d, %d, %d, %d\n", f.OffsetX, bottom, f.SourceW, f.SourceH)
			}
			if f.Rotated {
				b.WriteString("  rotate: 90\n")
			}
			if f.HasSlice {
				// libGDX orders NinePatch splits left, right, top, bottom.
				fmt.Fprintf(&b, "  split: %d, %d, %d, %d\n", f.Slice[0], f.Slice[2], f.Slice[1], f.Slice[3])
			}
			// Stills say -1 explicitly: libGDX reads a missing index as -1
			// but the Spine runtimes as 0.
			index := -1
			if f.Animation != "" {
				index = f.Index
			}
			fmt.Fprintf(&b, "  index: %d\n", index)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b.Bytes(), nil
}
