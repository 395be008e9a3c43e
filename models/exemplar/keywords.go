package exemplar

import (
	"context"
	"fmt"
	"image"
	"math"
	"slices"
	"sort"
	"strings"
	"unicode"
)

// materialWords maps every word the model recognises as a material
// (canonical names, synonyms and common plurals) to the canonical
// material.
var materialWords = map[string]string{
	"stone": "stone", "stones": "stone", "rock": "stone", "rocks": "stone", "rocky": "stone",
	"granite": "stone", "slate": "stone", "boulder": "stone", "cliff": "stone", "concrete": "stone",
	"brick": "brick", "bricks": "brick", "brickwork": "brick", "masonry": "brick",
	"cobblestone": "cobblestone", "cobblestones": "cobblestone", "cobble": "cobblestone", "cobbles": "cobblestone",
	"cobbled": "cobblestone", "paving": "cobblestone", "pavement": "cobblestone", "flagstone": "cobblestone", "flagstones": "cobblestone",
	"wood": "planks", "wooden": "planks", "plank": "planks", "planks": "planks", "boards": "planks",
	"floorboards": "planks", "timber": "planks", "parquet": "planks", "deck": "planks", "decking": "planks",
	"bark": "bark", "tree": "bark", "trunk": "bark", "log": "bark", "logs": "bark",
	"grass": "grass", "grassy": "grass", "lawn": "grass", "meadow": "grass", "turf": "grass", "field": "grass",
	"moss": "moss", "lichen": "moss",
	"dirt": "dirt", "soil": "dirt", "earth": "dirt", "mud": "dirt", "ground": "dirt", "dust": "dirt", "clay": "dirt",
	"gravel": "gravel", "pebble": "gravel", "pebbles": "gravel", "rubble": "gravel",
	"sand": "sand", "sandy": "sand", "desert": "sand", "beach": "sand", "dune": "sand", "dunes": "sand",
	"snow": "snow", "snowfield": "snow",
	"ice": "ice", "icy": "ice", "frozen": "ice", "glacier": "ice",
	"water": "water", "ocean": "water", "sea": "water", "lake": "water", "river": "water", "pond": "water", "pool": "water", "waves": "water",
	"lava": "lava", "magma": "lava", "molten": "lava",
	"metal": "metal", "metallic": "metal", "steel": "metal", "iron": "metal", "plate": "metal", "plates": "metal",
	"plating": "metal", "panel": "metal", "panels": "metal", "hull": "metal", "aluminium": "metal", "aluminum": "metal",
	"tile": "tiles", "tiles": "tiles", "tiled": "tiles", "ceramic": "tiles", "porcelain": "tiles",
	"fabric": "fabric", "cloth": "fabric", "textile": "fabric", "canvas": "fabric", "linen": "fabric",
	"cotton": "fabric", "wool": "fabric", "woven": "fabric", "weave": "fabric", "burlap": "fabric",
	"fire": "fire", "flame": "fire", "flames": "fire", "burning": "fire", "blaze": "fire", "inferno": "fire",
	"smoke": "smoke", "smoky": "smoke", "fog": "smoke", "mist": "smoke", "steam": "smoke", "cloud": "smoke", "clouds": "smoke",
	"marble": "marble",
}

// Materials lists the built-in materials, sorted.
func Materials() []string {
	ms := make([]string, 0, len(painters))
	for m := range painters {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	return ms
}

// structures are materials made of a substance; a substance word next to
// one colours it instead of adding a second material ("stone brick" is
// grey brick, "wooden tiles" are brown tiles).
var structures = map[string]bool{"brick": true, "cobblestone": true, "tiles": true, "planks": true, "metal": true}

// substanceColour is the colour word a substance material turns into when
// it qualifies a structure.
var substanceColour = map[string]string{"stone": "grey", "planks": "brown", "metal": "grey", "marble": "white", "ice": "ice-blue"}

// colourWords maps colour and tone words to their canonical names.
var colourWords = map[string]string{
	"red": "red", "crimson": "red", "scarlet": "red", "maroon": "red", "ruby": "red",
	"orange": "orange", "amber": "orange", "terracotta": "terracotta",
	"yellow": "yellow", "gold": "gold", "golden": "gold", "ochre": "gold",
	"green": "green", "emerald": "green", "olive": "olive",
	"blue": "blue", "azure": "blue", "navy": "navy", "cobalt": "blue", "sapphire": "blue",
	"teal": "teal", "cyan": "teal", "turquoise": "teal",
	"purple": "purple", "violet": "purple", "lilac": "purple", "magenta": "pink", "pink": "pink",
	"brown": "brown", "chocolate": "brown",
	"white": "white", "black": "black", "grey": "grey", "gray": "grey", "silver": "grey", "ashen": "grey",
	"beige": "beige", "tan": "beige", "cream": "beige", "sandstone": "beige",
	"dark": "dark", "darker": "dark", "shadowy": "dark", "night": "dark",
	"light": "light", "pale": "light", "bright": "light", "bleached": "light",
	"faded": "faded", "muted": "faded", "desaturated": "faded", "weathered": "faded", "old": "faded", "ancient": "faded",
	"vivid": "vivid", "saturated": "vivid", "colourful": "vivid", "colorful": "vivid",
}

// colourTargets are the hues colour words recolour exemplars to.
var colourTargets = map[string]rgb{
	"red":        {0.62, 0.13, 0.11},
	"orange":     {0.86, 0.45, 0.12},
	"terracotta": {0.72, 0.36, 0.22},
	"yellow":     {0.88, 0.78, 0.24},
	"gold":       {0.82, 0.62, 0.20},
	"green":      {0.24, 0.52, 0.18},
	"olive":      {0.45, 0.47, 0.20},
	"blue":       {0.18, 0.33, 0.70},
	"navy":       {0.10, 0.15, 0.42},
	"teal":       {0.13, 0.54, 0.55},
	"ice-blue":   {0.70, 0.85, 0.95},
	"purple":     {0.44, 0.22, 0.60},
	"pink":       {0.90, 0.48, 0.62},
	"brown":      {0.45, 0.29, 0.16},
	"white":      {0.90, 0.90, 0.88},
	"black":      {0.10, 0.10, 0.11},
	"grey":       {0.50, 0.50, 0.50},
	"beige":      {0.78, 0.68, 0.50},
}

// overlayWords maps weathering words to overlays painted over the
// material using its height map.
var overlayWords = map[string]string{
	"mossy": "mossy", "overgrown": "mossy", "moss-covered": "mossy",
	"snowy": "snowy", "snowcovered": "snowy", "frosty": "snowy", "frosted": "snowy", "wintry": "snowy",
	"rusty": "rusty", "rusted": "rusty", "corroded": "rusty", "rust": "rusty",
	"dirty": "dirty", "muddy": "dirty", "grimy": "dirty", "stained": "dirty", "dusty": "dirty",
	"wet": "wet", "damp": "wet", "rainy": "wet", "soaked": "wet",
	"burnt": "burnt", "burned": "burnt", "charred": "burnt", "scorched": "burnt", "sooty": "burnt",
	"cracked": "cracked", "broken": "cracked", "damaged": "cracked", "crumbling": "cracked",
}

// Selection is what a prompt's keywords chose: materials, colour and tone
// words, and overlays, each in canonical form and prompt order.
type Selection struct {
	Materials []string
	Colours   []string
	Overlays  []string
	// Shapes are the shape words ("path", "patch", "stripes", "border")
	// and the material each one shapes in the layout of a prompt with
	// several materials (see Model's layout).
	Shapes []Shape
	// Unknown are the prompt's words the model does not read (neither
	// keywords nor small words such as "with"), in prompt order: the
	// model ignores them, and says so in a warning.
	Unknown []string
}

// Shape is one shape word of a prompt and the material it applies to:
// "dirt path" is {Material: "dirt", Form: "path"}.
type Shape struct {
	Material string
	Form     string
}

// String summarises the selection for logs and reports.
func (s Selection) String() string {
	parts := []string{strings.Join(s.Materials, "+")}
	if len(s.Colours) > 0 {
		parts = append(parts, "colour "+strings.Join(s.Colours, ","))
	}
	if len(s.Overlays) > 0 {
		parts = append(parts, "overlay "+strings.Join(s.Overlays, ","))
	}
	for _, sh := range s.Shapes {
		parts = append(parts, sh.Form+" "+sh.Material)
	}
	return strings.Join(parts, "; ")
}

// Keywords lists every word Select recognises, sorted: material names and
// synonyms, colour and tone words, overlays and shape words.
func Keywords() []string {
	var ws []string
	for _, m := range []map[string]string{materialWords, colourWords, overlayWords, shapeWords} {
		for w := range m {
			ws = append(ws, w)
		}
	}
	sort.Strings(ws)
	return ws
}

// Select reads a prompt as keywords, not as a sentence: each word that
// names a material (or a synonym: "rock" is stone, "lawn" is grass,
// "magma" is lava), a colour or tone ("red", "dark", "weathered") or an
// overlay ("mossy", "snowy", "rusty", "wet", ...) counts, in any order, and
// every other word is ignored, negations included. Several materials are
// mixed in one exemplar bank. A substance word next to a structure colours
// it rather than adding a material: "stone brick wall" is grey brick. A
// prompt that names no material is an error that lists what is known.
func Select(prompt string) (Selection, error) {
	var sel Selection
	words := strings.FieldsFunc(strings.ToLower(prompt), func(r rune) bool {
		return !unicode.IsLetter(r) && r != '-'
	})
	add := func(list *[]string, v string) {
		if !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	// Where each material and shape word stands, to attach shapes to the
	// nearest material.
	var matAt []wordAt
	var shapeAt []wordAt
	for i, w := range words {
		w = strings.Trim(w, "-")
		if m, ok := lookup(materialWords, w); ok {
			add(&sel.Materials, m)
			matAt = append(matAt, wordAt{i, m})
		} else if c, ok := lookup(colourWords, w); ok {
			add(&sel.Colours, c)
		} else if o, ok := lookup(overlayWords, w); ok {
			add(&sel.Overlays, o)
		} else if f, ok := lookup(shapeWords, w); ok {
			shapeAt = append(shapeAt, wordAt{i, f})
		} else if strings.Contains(w, "-") {
			// "moss-covered" is in the table; "blue-grey" is two words.
			known := false
			for _, part := range strings.Split(w, "-") {
				if c, ok := lookup(colourWords, part); ok {
					add(&sel.Colours, c)
					known = true
				} else if m, ok := lookup(materialWords, part); ok {
					add(&sel.Materials, m)
					matAt = append(matAt, wordAt{i, m})
					known = true
				} else if smallWords[part] {
					known = true
				}
			}
			if !known {
				add(&sel.Unknown, w)
			}
		} else if w != "" && !smallWords[w] {
			add(&sel.Unknown, w)
		}
	}
	// A substance qualifying a structure becomes its colour, as long as a
	// material remains ("wood metal" stays two materials).
	var kept, turned []string
	for _, m := range sel.Materials {
		if _, ok := substanceColour[m]; ok && otherStructure(sel.Materials, m) {
			turned = append(turned, m)
			continue
		}
		kept = append(kept, m)
	}
	if len(kept) > 0 && len(turned) > 0 {
		for _, m := range turned {
			add(&sel.Colours, substanceColour[m])
		}
		sel.Materials = kept
	}
	sel.Shapes = attachShapes(shapeAt, matAt, sel.Materials)
	if len(sel.Materials) == 0 {
		return sel, fmt.Errorf("prompt %q names no material the built-in exemplar model knows (it reads keywords, not sentences): use one of %s, optionally with colours (red, dark, ...) and overlays (mossy, snowy, rusty, ...), or give the asset exemplars: images",
			prompt, strings.Join(Materials(), ", "))
	}
	return sel, nil
}

// otherStructure reports whether list holds a structure other than m, so
// that "wooden tiles" keeps tiles and makes wood a colour, while "metal"
// alone stays a material.
func otherStructure(list []string, m string) bool {
	for _, o := range list {
		if o != m && structures[o] {
			return true
		}
	}
	return false
}

// lookup finds w in table, also trying simple English plural forms.
func lookup(table map[string]string, w string) (string, bool) {
	if v, ok := table[w]; ok {
		return v, true
	}
	for _, suf := range []string{"es", "s"} {
		if strings.HasSuffix(w, suf) && len(w) > len(suf)+2 {
			if v, ok := table[strings.TrimSuffix(w, suf)]; ok {
				return v, true
			}
		}
	}
	return "", false
}

// variantsPerMaterial is how many differently seeded exemplars each
// material contributes: more variety for the bank to mix.
const variantsPerMaterial = 2

// Render paints the selection's exemplars: variantsPerMaterial images of
// size×size per material, recoloured by the colour words and weathered by
// the overlays. The same selection, size and seed give the same pixels.
func (s Selection) Render(ctx context.Context, size int, seed uint64) ([]*image.NRGBA, error) {
	if size < 16 || size > 4096 {
		return nil, fmt.Errorf("exemplar size %d out of range: want 16..4096", size)
	}
	var out []*image.NRGBA
	for _, m := range s.Materials {
		p, ok := painters[m]
		if !ok {
			return nil, fmt.Errorf("unknown material %q: want one of %s", m, strings.Join(Materials(), ", "))
		}
		for v := 0; v < variantsPerMaterial; v++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			cv := newCanvas(size)
			ms := mix64(seed ^ hashString(m) ^ uint64(v+1)*0x9e3779b97f4a7c15)
			p(cv, ms)
			// Hues first, then tones, so "dark blue" is a darker blue.
			for _, tones := range []bool{false, true} {
				for _, c := range s.Colours {
					if isTone(c) == tones {
						recolour(cv, c)
					}
				}
			}
			for _, o := range s.Overlays {
				overlay(cv, o, ms^hashString(o))
			}
			out = append(out, cv.image())
		}
	}
	return out, nil
}

// RenderMaterial paints one built-in material (no colour words or
// overlays): for previews, documentation and tests.
func RenderMaterial(material string, size int, seed uint64) (*image.NRGBA, error) {
	imgs, err := Selection{Materials: []string{material}}.Render(context.Background(), size, seed)
	if err != nil {
		return nil, err
	}
	return imgs[0], nil
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// isTone reports whether a colour word changes brightness or saturation
// rather than hue.
func isTone(word string) bool {
	switch word {
	case "dark", "light", "faded", "vivid":
		return true
	}
	return false
}

func luma(c rgb) float64 { return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2] }

// recolour applies one colour or tone word. Hues keep the exemplar's
// light and shade (each pixel's luminance relative to the mean) and take
// the target's colour; tones scale brightness or saturation.
func recolour(cv *canvas, word string) {
	n := len(cv.r)
	switch word {
	case "dark":
		for i := 0; i < n; i++ {
			cv.set(i, cv.get(i).scale(0.55))
		}
		return
	case "light":
		for i := 0; i < n; i++ {
			c := cv.get(i)
			cv.set(i, rgb{1 - (1-c[0])*0.6, 1 - (1-c[1])*0.6, 1 - (1-c[2])*0.6})
		}
		return
	case "faded", "vivid":
		k := 0.35
		if word == "vivid" {
			k = 1.5
		}
		for i := 0; i < n; i++ {
			c := cv.get(i)
			l := luma(c)
			cv.set(i, rgb{l + (c[0]-l)*k, l + (c[1]-l)*k, l + (c[2]-l)*k})
		}
		return
	}
	target, ok := colourTargets[word]
	if !ok {
		return
	}
	mean := 0.0
	for i := 0; i < n; i++ {
		mean += luma(cv.get(i))
	}
	mean = math.Max(mean/float64(n), 1e-3)
	tl := math.Max(luma(target), 1e-3)
	for i := 0; i < n; i++ {
		c := cv.get(i)
		rel := luma(c) / mean
		// Keep a little of the original hue variation.
		out := target.scale(rel)
		if tl > 0.7 && rel > 1 {
			// Light targets: push highlights towards white, not past it.
			out = mix(target, rgb{1, 1, 1}, clamp((rel-1)*0.8, 0, 1))
		}
		cv.set(i, mix(out, c.scale(tl/mean), 0.15))
	}
}

// overlay weathers the material: moss and dirt gather low, snow and
// frost settle high, rust and soot spread in noisy patches, wet surfaces
// darken and saturate, cracks cut dark lines.
func overlay(cv *canvas, word string, seed uint64) {
	cv.each(func(i int, u, v float64) {
		c := cv.get(i)
		h := cv.ht[i]
		n := fbm(u, v, 4, 4, 5, 0.55, seed)
		fine := fbm(u, v, 24, 24, 2, 0.5, seed+1)
		switch word {
		case "mossy":
			m := smoothstep(0.35, 0.7, (1-h)*0.9+0.6*n+0.15*fine)
			moss := mix(rgb{0.16, 0.27, 0.06}, rgb{0.40, 0.53, 0.13}, clamp(0.5+fine, 0, 1))
			cv.set(i, mix(c, moss, m))
		case "snowy":
			m := smoothstep(0.45, 0.75, h*0.8+0.5*n+0.1*fine)
			cv.set(i, mix(c, rgb{0.93, 0.95, 0.98}.scale(1+0.03*fine), m))
		case "rusty":
			m := smoothstep(0.1, 0.5, n+0.3*(1-h)+0.2*fine)
			rust := mix(rgb{0.45, 0.18, 0.07}, rgb{0.68, 0.34, 0.12}, clamp(0.5+fine, 0, 1))
			cv.set(i, mix(c, rust.scale(0.7+0.6*luma(c)), 0.85*m))
		case "dirty":
			m := smoothstep(0.2, 0.7, (1-h)*0.7+0.5*n)
			cv.set(i, mix(c, rgb{0.27, 0.2, 0.13}, 0.7*m))
		case "wet":
			l := luma(c)
			sat := rgb{l + (c[0]-l)*1.3, l + (c[1]-l)*1.3, l + (c[2]-l)*1.3}
			cv.set(i, sat.scale(0.7))
		case "burnt":
			m := smoothstep(0.05, 0.5, n+0.2*fine)
			cv.set(i, mix(c, rgb{0.05, 0.04, 0.04}, 0.85*m))
		case "cracked":
			wu, wv := warped(u, v, 0.07, 3, seed+2)
			f1, f2, _ := worley(wu, wv, 3, 3, 0.9, seed+3)
			k := 1 - smoothstep(0, 0.03, f2-f1)
			cv.set(i, mix(c, c.scale(0.25), k))
			cv.ht[i] = h * (1 - k)
		}
	})
}
