package atlas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// This file writes the TexturePacker-style JSON formats. The writer is
// hand-made rather than encoding/json because key order matters: frames
// stay in frame order (Aseprite's frameTags index into it, and PixiJS keeps
// object keys in insertion order), and the bytes must be identical on every
// run.

// App and Version go into every data file's meta block.
const (
	App     = "kiln"
	Version = "1"
)

// jw is an indenting JSON writer.
type jw struct {
	b     bytes.Buffer
	depth int
	first []bool // per open container: no member written yet
}

func (w *jw) newline() {
	w.b.WriteByte('\n')
	for range w.depth {
		w.b.WriteByte('\t')
	}
}

// open starts an object or array ('{' or '[') as a value.
func (w *jw) open(c byte) {
	w.b.WriteByte(c)
	w.depth++
	w.first = append(w.first, true)
}

// close ends the innermost container.
func (w *jw) close(c byte) {
	w.depth--
	empty := w.first[len(w.first)-1]
	w.first = w.first[:len(w.first)-1]
	if !empty {
		w.newline()
	}
	w.b.WriteByte(c)
}

// member starts the next member of the innermost container; key is empty
// inside arrays.
func (w *jw) member(key string) {
	n := len(w.first) - 1
	if !w.first[n] {
		w.b.WriteByte(',')
	}
	w.first[n] = false
	w.newline()
	if key != "" {
		w.str(key)
		w.b.WriteString(": ")
	}
}

// str writes a JSON string.
func (w *jw) str(s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	w.b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// raw writes literal JSON.
func (w *jw) raw(s string) { w.b.WriteString(s) }

// num formats a float the shortest way that reads back exactly.
func num(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// rectJSON is {"x":..,"y":..,"w":..,"h":..} on one line.
func rectJSON(x, y, w, h int) string {
	return fmt.Sprintf(`{"x": %d, "y": %d, "w": %d, "h": %d}`, x, y, w, h)
}

func sizeJSON(w, h int) string { return fmt.Sprintf(`{"w": %d, "h": %d}`, w, h) }

// frameFields writes the members of one frame object (without braces).
func (a *Atlas) frameFields(w *jw, f *Frame) {
	w.member("frame")
	w.raw(rectJSON(f.X, f.Y, f.W, f.H))
	w.member("rotated")
	w.raw(strconv.FormatBool(f.Rotated))
	w.member("trimmed")
	w.raw(strconv.FormatBool(f.Trimmed()))
	w.member("spriteSourceSize")
	w.raw(rectJSON(f.OffsetX, f.OffsetY, f.W, f.H))
	w.member("sourceSize")
	w.raw(sizeJSON(f.SourceW, f.SourceH))
	w.member("pivot")
	w.raw(fmt.Sprintf(`{"x": %s, "y": %s}`, num(f.Pivot[0]), num(f.Pivot[1])))
	if f.HasPivot {
		// PixiJS and every Phaser 3 release read a frame's pivot from
		// "anchor" (newer Phaser also from "pivot"). It is only written
		// for sprites that set one, so PixiJS keeps its top-left default
		// for the others.
		w.member("anchor")
		w.raw(fmt.Sprintf(`{"x": %s, "y": %s}`, num(f.Pivot[0]), num(f.Pivot[1])))
	}
	if f.HasSlice {
		l, t, r, b := f.Slice[0], f.Slice[1], f.Slice[2], f.Slice[3]
		// 9-slice borders: PixiJS reads "borders" (the texture's default
		// borders, which NineSliceSprite uses); Phaser reads TexturePacker's
		// "scale9Borders", the rectangle of the stretching middle.
		w.member("borders")
		w.raw(fmt.Sprintf(`{"left": %d, "top": %d, "right": %d, "bottom": %d}`, l, t, r, b))
		w.member("scale9Borders")
		w.raw(rectJSON(l, t, f.W-l-r, f.H-t-b))
	}
	if f.Animation != "" {
		// Aseprite's per-frame duration in milliseconds.
		w.member("duration")
		w.raw(strconv.Itoa(int(math.Round(1000 / f.FPS))))
	}
}

// pageFrames returns the indices of the frames on page p, in frame order.
func (a *Atlas) pageFrames(p int) []int {
	var out []int
	for k := range a.Frames {
		if a.Frames[k].Page == p {
			out = append(out, k)
		}
	}
	return out
}

// pageAnimations returns the animations whose frames all lie on page p.
// An animation split over pages cannot be described by one page's file.
func (a *Atlas) pageAnimations(p int) []*Animation {
	var out []*Animation
	for i := range a.Animations {
		an := &a.Animations[i]
		all := true
		for _, k := range an.Frames {
			if a.Frames[k].Page != p {
				all = false
				break
			}
		}
		if all {
			out = append(out, an)
		}
	}
	return out
}

// SplitAnimations returns the full names of animations whose frames lie on
// more than one page (Pack keeps an animation on one page whenever it fits
// on one). Each JSON hash and array file describes one page, so its
// "animations" and "meta.frameTags" omit them; page 0's meta.animations
// (PixiJS multipack), the Phaser multiatlas and the Godot and libGDX
// formats, which span pages, carry them.
func (a *Atlas) SplitAnimations() []string {
	var out []string
	for i := range a.Animations {
		an := &a.Animations[i]
		for _, k := range an.Frames[1:] {
			if a.Frames[k].Page != a.Frames[an.Frames[0]].Page {
				out = append(out, an.FullName)
				break
			}
		}
	}
	return out
}

// writeAnimations writes an object of every animation in anims, each a
// list of its frame names in frame order.
func (a *Atlas) writeAnimations(w *jw, anims []*Animation) {
	w.open('{')
	for _, an := range anims {
		w.member(an.FullName)
		w.raw("[")
		for i, k := range an.Frames {
			if i > 0 {
				w.raw(", ")
			}
			w.str(a.Frames[k].Name)
		}
		w.raw("]")
	}
	w.close('}')
}

// allAnimations returns pointers to every animation, in order.
func (a *Atlas) allAnimations() []*Animation {
	out := make([]*Animation, len(a.Animations))
	for i := range a.Animations {
		out[i] = &a.Animations[i]
	}
	return out
}

// scaleString is Settings.Scale as meta.scale writes it.
func (a *Atlas) scaleString() string {
	if a.Settings.Scale == 0 {
		return "1"
	}
	return num(a.Settings.Scale)
}

// jsonPage writes one page's JSON hash (array=false) or array file.
// Page 0's file, the one a game loads, also lists every animation of the
// atlas in meta.animations, including those on other pages and those whose
// frames span pages.
func (a *Atlas) jsonPage(p int, array bool, image string, related []string) []byte {
	frames := a.pageFrames(p)
	position := map[int]int{} // frame index → position in this file
	for i, k := range frames {
		position[k] = i
	}
	w := &jw{}
	w.open('{')
	w.member("frames")
	if array {
		w.open('[')
	} else {
		w.open('{')
	}
	for _, k := range frames {
		f := &a.Frames[k]
		if array {
			w.member("")
			w.open('{')
			w.member("filename")
			w.str(f.Name)
		} else {
			w.member(f.Name)
			w.open('{')
		}
		a.frameFields(w, f)
		w.close('}')
	}
	if array {
		w.close(']')
	} else {
		w.close('}')
	}
	anims := a.pageAnimations(p)
	if len(anims) > 0 {
		// PixiJS builds Spritesheet.animations from this map, and Phaser
		// copies it to the texture's customData.
		w.member("animations")
		a.writeAnimations(w, anims)
	}
	w.member("meta")
	w.open('{')
	w.member("app")
	w.str(App)
	w.member("version")
	w.str(Version)
	w.member("image")
	w.str(image)
	w.member("format")
	w.str("RGBA8888")
	w.member("size")
	r := a.Pages[p].Rect
	w.raw(sizeJSON(r.Dx(), r.Dy()))
	w.member("scale")
	w.str(a.scaleString())
	if p == 0 && len(a.Animations) > 0 {
		// A page's Spritesheet can only build the animations whose
		// frames are all on it; this map names every animation's frames,
		// which Assets.load caches from all the linked pages.
		w.member("animations")
		a.writeAnimations(w, a.allAnimations())
	}
	if len(anims) > 0 {
		// Aseprite's frame tags: from and to index this file's frames.
		w.member("frameTags")
		w.open('[')
		for _, an := range anims {
			w.member("")
			w.raw(fmt.Sprintf(`{"name": %s, "from": %d, "to": %d, "direction": %s}`,
				quote(an.FullName), position[an.Frames[0]], position[an.Frames[len(an.Frames)-1]], quote(an.Direction)))
		}
		w.close(']')
	}
	if len(related) > 0 {
		// PixiJS loads the other pages of a multi-page atlas from here.
		w.member("related_multi_packs")
		w.open('[')
		for _, r := range related {
			w.member("")
			w.str(r)
		}
		w.close(']')
	}
	w.close('}')
	w.close('}')
	w.b.WriteByte('\n')
	return w.b.Bytes()
}

// quote returns s as a JSON string.
func quote(s string) string {
	w := &jw{}
	w.str(s)
	return w.b.String()
}

// phaserMultiatlas writes the Phaser 3 multiatlas file for all pages.
func (a *Atlas) phaserMultiatlas(images []string) []byte {
	w := &jw{}
	w.open('{')
	w.member("textures")
	w.open('[')
	for p := range a.Pages {
		w.member("")
		w.open('{')
		w.member("image")
		w.str(images[p])
		w.member("format")
		w.str("RGBA8888")
		w.member("size")
		r := a.Pages[p].Rect
		w.raw(sizeJSON(r.Dx(), r.Dy()))
		w.member("scale")
		w.raw(a.scaleString())
		if p == 0 && len(a.Animations) > 0 {
			// Phaser copies a texture entry's extra members to the
			// texture's customData, so every animation, wherever its
			// frames are, is at customData.animations.
			w.member("animations")
			a.writeAnimations(w, a.allAnimations())
		}
		w.member("frames")
		w.open('[')
		for _, k := range a.pageFrames(p) {
			f := &a.Frames[k]
			w.member("")
			w.open('{')
			w.member("filename")
			w.str(f.Name)
			a.frameFields(w, f)
			w.close('}')
		}
		w.close(']')
		w.close('}')
	}
	w.close(']')
	w.member("meta")
	w.open('{')
	w.member("app")
	w.str(App)
	w.member("version")
	w.str(Version)
	w.close('}')
	w.close('}')
	w.b.WriteByte('\n')
	return w.b.Bytes()
}
