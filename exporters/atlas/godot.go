package atlas

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// This file writes Godot 4 text resources (format=3): an AtlasTexture per
// still sprite, a StyleBoxTexture per still sprite with 9-slice borders,
// and a SpriteFrames per animated set, all pointing at the page images
// through res:// paths. Godot's AtlasTexture has no origin, so pivots are
// not written (a Sprite2D's offset sets one), and SpriteFrames has no
// 9-slice borders.

// GodotResDir returns the res:// path of folder dir in the Godot project
// whose root folder is root ("" means dir itself is the root). It fails
// when dir is not inside root.
func GodotResDir(root, dir string) (string, error) {
	if root == "" {
		return "res://", nil
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolve Godot project root %s: %w", root, err)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve output folder %s: %w", dir, err)
	}
	if !safepath.Within(absRoot, absDir) {
		return "", fmt.Errorf("output folder %s is outside the Godot project root %s, so Godot cannot load it by a res:// path; set godot_root to a folder that contains the output folder", dir, root)
	}
	rel, err := filepath.Rel(absRoot, absDir)
	if err != nil {
		return "", fmt.Errorf("output folder %s relative to Godot project root %s: %w", dir, root, err)
	}
	if rel == "." {
		return "res://", nil
	}
	return "res://" + filepath.ToSlash(rel) + "/", nil
}

// godotUID returns a stable resource UID for a res:// path, in Godot's text
// form: "uid://" and the 63-bit id in base 34 (a–y, 0–8), most significant
// digit first. The same path always gets the same UID, so scenes that
// reference a regenerated resource keep working.
func godotUID(resPath string) string {
	h := fnv.New64a()
	h.Write([]byte("kiln-godot-uid\x00" + resPath))
	id := h.Sum64() & 0x7fffffffffffffff
	if id == 0 {
		id = 1
	}
	const digits = "abcdefghijklmnopqrstuvwxy012345678"
	var buf [16]byte
	i := len(buf)
	for id > 0 {
		i--
		buf[i] = digits[id%34]
		id /= 34
	}
	return "uid://" + string(buf[i:])
}

// godotString quotes s as a Godot string literal.
func godotString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// godotFloat formats a float the way Godot writes floats: always with a
// decimal point or exponent.
func godotFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// godotFileName checks that name can be a file path inside the output
// folder on every platform.
func godotFileName(name string) error {
	if err := safepath.Validate(name); err != nil {
		return err
	}
	if strings.ContainsAny(name, `:*?"<>|`) {
		return fmt.Errorf("name %q contains one of the characters : * ? \" < > |, which Windows does not allow in file names", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." {
			return fmt.Errorf("name %q has an empty or \".\" path element", name)
		}
	}
	return nil
}

// godotResources builds the Godot files: "<base>/<name>.tres" for every
// still sprite and "<base>/<set>.tres" for every animated set (the frames'
// sheet, or the animation's name when it has no sheet). images are the page
// file names, resDir the res:// folder they are in.
func (a *Atlas) godotResources(base string, images []string, resDir string) ([]File, error) {
	var files []File
	var errs []error
	owner := map[string]string{} // file name → what made it
	claim := func(name, what string) bool {
		if err := godotFileName(name); err != nil {
			errs = append(errs, fmt.Errorf("godot format: %s: %w", what, err))
			return false
		}
		file := base + "/" + name + ".tres"
		if other, taken := owner[file]; taken {
			errs = append(errs, fmt.Errorf("godot format: %s and %s would both be written to %s; rename one", other, what, file))
			return false
		}
		owner[file] = what
		return true
	}
	pagePath := func(p int) string { return resDir + images[p] }

	for k := range a.Frames {
		f := &a.Frames[k]
		if f.Animation != "" {
			continue
		}
		what := fmt.Sprintf("sprite %q", f.Name)
		if !claim(f.Name, what) {
			continue
		}
		name := base + "/" + f.Name + ".tres"
		var b bytes.Buffer
		fmt.Fprintf(&b, "[gd_resource type=\"AtlasTexture\" load_steps=2 format=3 uid=\"%s\"]\n\n", godotUID(resDir+name))
		fmt.Fprintf(&b, "[ext_resource type=\"Texture2D\" path=%s id=\"1_page%d\"]\n\n", godotString(pagePath(f.Page)), f.Page)
		b.WriteString("[resource]\n")
		fmt.Fprintf(&b, "atlas = ExtResource(\"1_page%d\")\n", f.Page)
		a.godotRegion(&b, f)
		files = append(files, File{Name: name, Data: b.Bytes()})
		if f.HasSlice && claim(f.Name+".stylebox", fmt.Sprintf("the 9-slice style box of sprite %q", f.Name)) {
			files = append(files, a.godotStyleBox(base, f, resDir, pagePath(f.Page)))
		}
	}

	// Animated sets, in order of their first animation.
	type set struct {
		name  string
		anims []*Animation
	}
	var sets []*set
	bySet := map[string]*set{}
	for i := range a.Animations {
		an := &a.Animations[i]
		key := an.Sheet
		if key == "" {
			key = an.Name
		}
		s, ok := bySet[key]
		if !ok {
			s = &set{name: key}
			bySet[key] = s
			sets = append(sets, s)
		}
		s.anims = append(s.anims, an)
	}
	for _, s := range sets {
		what := fmt.Sprintf("animated set %q", s.name)
		if !claim(s.name, what) {
			continue
		}
		name := base + "/" + s.name + ".tres"
		// Pages used by the set, in page order, and one AtlasTexture
		// sub-resource per frame, in animation then frame order.
		used := make([]bool, len(a.Pages))
		var subs []int
		for _, an := range s.anims {
			for _, k := range an.Frames {
				used[a.Frames[k].Page] = true
				subs = append(subs, k)
			}
		}
		nPages := 0
		for _, u := range used {
			if u {
				nPages++
			}
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "[gd_resource type=\"SpriteFrames\" load_steps=%d format=3 uid=\"%s\"]\n\n",
			nPages+len(subs)+1, godotUID(resDir+name))
		for p, u := range used {
			if u {
				fmt.Fprintf(&b, "[ext_resource type=\"Texture2D\" path=%s id=\"1_page%d\"]\n", godotString(pagePath(p)), p)
			}
		}
		subID := map[int]string{}
		for i, k := range subs {
			f := &a.Frames[k]
			id := fmt.Sprintf("AtlasTexture_%d", i)
			subID[k] = id
			fmt.Fprintf(&b, "\n[sub_resource type=\"AtlasTexture\" id=\"%s\"]\n", id)
			fmt.Fprintf(&b, "atlas = ExtResource(\"1_page%d\")\n", f.Page)
			a.godotRegion(&b, f)
		}
		b.WriteString("\n[resource]\nanimations = [")
		for i, an := range s.anims {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("{\n\"frames\": [")
			for j, k := range playOrder(an) {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "{\n\"duration\": 1.0,\n\"texture\": SubResource(\"%s\")\n}", subID[k])
			}
			fmt.Fprintf(&b, "],\n\"loop\": %t,\n\"name\": &%s,\n\"speed\": %s\n}", an.Loop, godotString(an.Name), godotFloat(an.FPS))
		}
		b.WriteString("]\n")
		files = append(files, File{Name: name, Data: b.Bytes()})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return files, nil
}

// godotStyleBox writes "<base>/<name>.stylebox.tres", a StyleBoxTexture
// that draws the sprite's region of its page as a 9-slice (the borders
// stay, the middle stretches), for Panel and Button themes. Sprites with
// borders are never trimmed, so the region is the whole sprite. (Godot's
// NinePatchRect keeps its margins in the scene, not in a resource.)
func (a *Atlas) godotStyleBox(base string, f *Frame, resDir, page string) File {
	name := base + "/" + f.Name + ".stylebox.tres"
	var b bytes.Buffer
	fmt.Fprintf(&b, "[gd_resource type=\"StyleBoxTexture\" load_steps=2 format=3 uid=\"%s\"]\n\n", godotUID(resDir+name))
	fmt.Fprintf(&b, "[ext_resource type=\"Texture2D\" path=%s id=\"1_page%d\"]\n\n", godotString(page), f.Page)
	b.WriteString("[resource]\n")
	fmt.Fprintf(&b, "texture = ExtResource(\"1_page%d\")\n", f.Page)
	fmt.Fprintf(&b, "texture_margin_left = %s\n", godotFloat(float64(f.Slice[0])))
	fmt.Fprintf(&b, "texture_margin_top = %s\n", godotFloat(float64(f.Slice[1])))
	fmt.Fprintf(&b, "texture_margin_right = %s\n", godotFloat(float64(f.Slice[2])))
	fmt.Fprintf(&b, "texture_margin_bottom = %s\n", godotFloat(float64(f.Slice[3])))
	fmt.Fprintf(&b, "region_rect = Rect2(%d, %d, %d, %d)\n", f.X, f.Y, f.W, f.H)
	return File{Name: name, Data: b.Bytes()}
}

// godotRegion writes an AtlasTexture's region, margin and filter_clip.
func (a *Atlas) godotRegion(b *bytes.Buffer, f *Frame) {
	fmt.Fprintf(b, "region = Rect2(%d, %d, %d, %d)\n", f.X, f.Y, f.W, f.H)
	if f.Trimmed() {
		// The margin's position is where the region starts in the
		// original image; its size is what trimming removed, so the
		// texture reports the original size.
		fmt.Fprintf(b, "margin = Rect2(%d, %d, %d, %d)\n", f.OffsetX, f.OffsetY, f.SourceW-f.W, f.SourceH-f.H)
	}
	if a.Settings.Extrude == 0 {
		// Without extruded edges, keep filtering from sampling the
		// neighbouring sprites.
		b.WriteString("filter_clip = true\n")
	}
}

// playOrder returns an animation's frames in the order they play:
// reversed for "reverse", and there and back (without repeating the ends)
// for "pingpong", since SpriteFrames only plays forwards.
func playOrder(an *Animation) []int {
	fr := an.Frames
	switch an.Direction {
	case "reverse":
		out := make([]int, len(fr))
		for i, k := range fr {
			out[len(fr)-1-i] = k
		}
		return out
	case "pingpong":
		out := append([]int(nil), fr...)
		for i := len(fr) - 2; i >= 1; i-- {
			out = append(out, fr[i])
		}
		return out
	}
	return fr
}
