package atlas

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"image"
	"math"
	"slices"
)

// MaxSpriteSide is the largest sprite width or height Pack accepts.
const MaxSpriteSide = 1 << 14

// Pack trims, de-duplicates and packs sprites into pages and renders the
// page images. Every problem with the input (bad names, duplicate names,
// missing or empty images, animations whose frames disagree, sprites larger
// than a page) is reported at once. ctx cancels a long search.
func Pack(ctx context.Context, sprites []Sprite, s Settings) (*Atlas, error) {
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("atlas settings: %w", err)
	}
	if len(sprites) == 0 {
		return nil, errors.New("atlas has no sprites; include at least one image")
	}
	if err := checkSprites(sprites); err != nil {
		return nil, err
	}
	if s.Rotation {
		for i := range sprites {
			if sprites[i].Slice != nil {
				return nil, fmt.Errorf("sprite %q has 9-slice borders, which engines cannot apply to a rotated region; turn rotation off or drop the slice", sprites[i].Name)
			}
		}
	}
	if s.Scale != 1 {
		var err error
		if sprites, err = scaleSprites(ctx, sprites, s.Scale, s.Filter == FilterNearest); err != nil {
			return nil, err
		}
	}
	order := frameOrder(sprites)

	// Trim, premultiply and de-duplicate, in frame order so the first
	// frame with given pixels owns the rectangle.
	a := &Atlas{Settings: s, Frames: make([]Frame, len(order))}
	type unique struct {
		img   *image.NRGBA
		frame int // first frame using it
	}
	var uniques []unique
	frameUnique := make([]int, len(order))
	seed := maphash.MakeSeed()
	buckets := map[uint64][]int{}
	for k, si := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sp := &sprites[si]
		src := toNRGBA(sp.Image)
		trim := s.Trim
		if sp.Slice != nil {
			trim = -1 // the borders count from the image's edges
		}
		tr := trimRect(src, trim)
		img := crop(src, tr)
		if s.PremultiplyAlpha {
			premultiply(img)
		}
		f := Frame{
			Name: sp.Name, W: tr.Dx(), H: tr.Dy(),
			OffsetX: tr.Min.X, OffsetY: tr.Min.Y,
			SourceW: src.Rect.Dx(), SourceH: src.Rect.Dy(),
			Pivot: [2]float64{0.5, 0.5}, HasPivot: sp.Pivot != nil,
			Sheet: sp.Sheet, Animation: sp.Animation, Index: sp.Frame,
			Shared: -1,
		}
		if sp.Pivot != nil {
			f.Pivot = *sp.Pivot
		}
		if sp.Slice != nil {
			f.Slice, f.HasSlice = *sp.Slice, true
		}
		if sp.Animation != "" {
			f.FPS = fpsOrDefault(sp.FPS)
		}
		a.Frames[k] = f
		u := -1
		if s.Dedupe {
			h := pixelHash(seed, img)
			for _, j := range buckets[h] {
				if samePixels(uniques[j].img, img) {
					u = j
					break
				}
			}
			if u < 0 {
				buckets[h] = append(buckets[h], len(uniques))
			}
		}
		if u < 0 {
			u = len(uniques)
			uniques = append(uniques, unique{img, k})
		} else {
			a.Frames[k].Shared = uniques[u].frame
		}
		frameUnique[k] = u
	}

	sizes := make([]image.Point, len(uniques))
	names := make([]string, len(uniques))
	for j, u := range uniques {
		sizes[j] = u.img.Rect.Size()
		names[j] = a.Frames[u.frame].Name
	}
	l, err := packRects(ctx, sizes, s, names, uniqueGroups(a.Frames, frameUnique, len(uniques)))
	if err != nil {
		return nil, err
	}

	clockwise := rotatesClockwise(s.Formats)
	for _, p := range l.Pages {
		a.Pages = append(a.Pages, image.NewNRGBA(image.Rect(0, 0, p.X, p.Y)))
	}
	for j, u := range uniques {
		p := l.Places[j]
		blit(a.Pages[p.Page], u.img, p.X, p.Y, p.Rotated, clockwise, s.Extrude)
	}
	for k := range a.Frames {
		p := l.Places[frameUnique[k]]
		f := &a.Frames[k]
		f.Page, f.X, f.Y, f.Rotated = p.Page, p.X, p.Y, p.Rotated
	}
	a.Animations = collectAnimations(sprites, order, a.Frames)
	return a, nil
}

// checkSprites reports every problem with the sprites at once.
func checkSprites(sprites []Sprite) error {
	var errs []error
	byName := map[string]int{}
	type animKey struct{ sheet, anim string }
	type frameKey struct {
		animKey
		frame int
	}
	firstOf := map[animKey]int{}
	fullNames := map[string]animKey{}
	frames := map[frameKey]int{}
	for i := range sprites {
		sp := &sprites[i]
		label := fmt.Sprintf("sprite %d", i)
		if sp.Name != "" {
			label = fmt.Sprintf("sprite %q", sp.Name)
		}
		if err := validName(sp.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w; give every sprite a name", label, err))
		} else if j, dup := byName[sp.Name]; dup {
			errs = append(errs, fmt.Errorf("sprites %d and %d are both named %q; names must be unique in an atlas", j, i, sp.Name))
		} else {
			byName[sp.Name] = i
		}
		if sp.Image == nil {
			errs = append(errs, fmt.Errorf("%s has no image", label))
		} else {
			b := sp.Image.Bounds()
			if b.Dx() <= 0 || b.Dy() <= 0 {
				errs = append(errs, fmt.Errorf("%s has an empty image (%d×%d)", label, b.Dx(), b.Dy()))
			} else if b.Dx() > MaxSpriteSide || b.Dy() > MaxSpriteSide {
				errs = append(errs, fmt.Errorf("%s is %d×%d, larger than the %d-pixel limit for a sprite", label, b.Dx(), b.Dy(), MaxSpriteSide))
			}
		}
		if sp.Pivot != nil && (!finite(sp.Pivot[0]) || !finite(sp.Pivot[1])) {
			errs = append(errs, fmt.Errorf("%s has a pivot that is not a finite number", label))
		}
		if sp.Slice != nil && sp.Image != nil {
			if err := CheckSlice(*sp.Slice, sp.Image.Bounds().Size()); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", label, err))
			}
		}
		switch sp.Direction {
		case "", "forward", "reverse", "pingpong":
		default:
			errs = append(errs, fmt.Errorf("%s: direction %q is not one of forward, reverse, pingpong", label, sp.Direction))
		}
		if sp.Animation == "" {
			if sp.Sheet != "" || sp.Frame != 0 {
				errs = append(errs, fmt.Errorf("%s has a sheet or frame number but no animation name; name its animation", label))
			}
			continue
		}
		if err := validName(sp.Animation); err != nil {
			errs = append(errs, fmt.Errorf("%s: animation %w", label, err))
		}
		if sp.Sheet != "" {
			if err := validName(sp.Sheet); err != nil {
				errs = append(errs, fmt.Errorf("%s: sheet %w", label, err))
			}
		}
		if sp.Frame < 0 {
			errs = append(errs, fmt.Errorf("%s has frame number %d; frame numbers start at 0", label, sp.Frame))
		}
		if !finite(sp.FPS) || sp.FPS < 0 {
			errs = append(errs, fmt.Errorf("%s has fps %v; use a positive number (0 means %d)", label, sp.FPS, DefaultFPS))
		}
		ak := animKey{sp.Sheet, sp.Animation}
		fk := frameKey{ak, sp.Frame}
		if j, dup := frames[fk]; dup {
			errs = append(errs, fmt.Errorf("sprites %q and %q are both frame %d of animation %q; frame numbers must be unique in an animation", sprites[j].Name, sp.Name, sp.Frame, fullAnimName(sp.Sheet, sp.Animation)))
		} else {
			frames[fk] = i
		}
		if j, seen := firstOf[ak]; !seen {
			firstOf[ak] = i
			full := fullAnimName(sp.Sheet, sp.Animation)
			if other, clash := fullNames[full]; clash {
				errs = append(errs, fmt.Errorf("animation %q of sheet %q and animation %q of sheet %q both get the name %q; rename one", other.anim, other.sheet, ak.anim, ak.sheet, full))
			} else {
				fullNames[full] = ak
			}
		} else {
			f := &sprites[j]
			if fpsOrDefault(f.FPS) != fpsOrDefault(sp.FPS) || f.Loop != sp.Loop || dirOrDefault(f.Direction) != dirOrDefault(sp.Direction) {
				errs = append(errs, fmt.Errorf("sprites %q and %q are frames of animation %q but disagree on fps, loop or direction; give every frame the same values", f.Name, sp.Name, fullAnimName(sp.Sheet, sp.Animation)))
			}
		}
	}
	return errors.Join(errs...)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func dirOrDefault(d string) string {
	if d == "" {
		return "forward"
	}
	return d
}

// fullAnimName is "sheet/anim", or anim without a sheet.
func fullAnimName(sheet, anim string) string {
	if sheet == "" {
		return anim
	}
	return sheet + "/" + anim
}

// frameOrder returns sprite indices in frame order: by animation (full
// name) or, for stills, by name; then frame number; then name.
func frameOrder(sprites []Sprite) []int {
	order := make([]int, len(sprites))
	for i := range order {
		order[i] = i
	}
	group := func(sp *Sprite) string {
		if sp.Animation != "" {
			return fullAnimName(sp.Sheet, sp.Animation)
		}
		return sp.Name
	}
	slices.SortFunc(order, func(a, b int) int {
		sa, sb := &sprites[a], &sprites[b]
		if c := cmp.Compare(group(sa), group(sb)); c != 0 {
			return c
		}
		if c := cmp.Compare(sa.Frame, sb.Frame); c != 0 {
			return c
		}
		return cmp.Compare(sa.Name, sb.Name)
	})
	return order
}

// collectAnimations groups frames into animations, sorted by full name.
func collectAnimations(sprites []Sprite, order []int, frames []Frame) []Animation {
	var anims []Animation
	index := map[string]int{}
	for k, si := range order {
		sp := &sprites[si]
		if sp.Animation == "" {
			continue
		}
		full := fullAnimName(sp.Sheet, sp.Animation)
		j, ok := index[full]
		if !ok {
			j = len(anims)
			index[full] = j
			anims = append(anims, Animation{
				Sheet: sp.Sheet, Name: sp.Animation, FullName: full,
				FPS: frames[k].FPS, Loop: sp.Loop, Direction: dirOrDefault(sp.Direction),
			})
		}
		anims[j].Frames = append(anims[j].Frames, k)
	}
	slices.SortFunc(anims, func(a, b Animation) int { return cmp.Compare(a.FullName, b.FullName) })
	return anims
}

// CheckSlice reports 9-slice borders (left, top, right, bottom) that are
// negative or leave no middle to stretch in an image of the given size.
// Pack runs it on every sprite; callers run it to report a problem at the
// setting's own position.
func CheckSlice(b [4]int, size image.Point) error {
	l, t, r, bt := b[0], b[1], b[2], b[3]
	switch {
	case l < 0 || t < 0 || r < 0 || bt < 0:
		return fmt.Errorf("slice [%d, %d, %d, %d] has a negative border; borders are pixel counts from 0 up", l, t, r, bt)
	case l+r >= size.X || t+bt >= size.Y:
		return fmt.Errorf("slice [%d, %d, %d, %d] leaves no middle to stretch in the %d×%d image; left+right must be below the width and top+bottom below the height", l, t, r, bt, size.X, size.Y)
	}
	return nil
}

// uniqueGroups returns, per unique rectangle, the group that has to stay on
// one page: the rectangles of one animation, merged with every other
// animation that shares a rectangle with it through dedupe. Stills are -1.
func uniqueGroups(frames []Frame, frameUnique []int, n int) []int {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		p, ok := parent[x]
		if !ok || p == x {
			return x
		}
		r := find(p)
		parent[x] = r
		return r
	}
	owner := make([]string, n) // unique → first animation using it
	for k := range frames {
		f := &frames[k]
		if f.Animation == "" {
			continue
		}
		an := fullAnimName(f.Sheet, f.Animation)
		if _, ok := parent[an]; !ok {
			parent[an] = an
		}
		u := frameUnique[k]
		if owner[u] == "" {
			owner[u] = an
		} else if a, b := find(owner[u]), find(an); a != b {
			parent[max(a, b)] = min(a, b)
		}
	}
	ids := map[string]int{}
	groups := make([]int, n)
	for u := range groups {
		groups[u] = -1
		if owner[u] == "" {
			continue
		}
		root := find(owner[u])
		id, ok := ids[root]
		if !ok {
			id = len(ids)
			ids[root] = id
		}
		groups[u] = id
	}
	return groups
}
