package exemplar

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
)

// shapeWords map the words that shape a material's region in a prompt
// with several materials to their canonical form.
var shapeWords = map[string]string{
	"path": "path", "road": "path", "trail": "path", "track": "path", "lane": "path", "stream": "path", "creek": "path",
	"patch": "patch", "patches": "patch", "spots": "patch", "spot": "patch", "clumps": "patch", "clump": "patch", "puddle": "patch", "puddles": "patch", "islands": "patch",
	"stripes": "stripes", "stripe": "stripes", "striped": "stripes", "bands": "stripes", "band": "stripes", "rows": "stripes",
	"border": "border", "edge": "border", "edges": "border", "rim": "border", "frame": "border", "framed": "border", "margin": "border",
}

// smallWords are the words of a prompt that carry no picture on their own
// (articles, prepositions, "covered", "texture"): Select skips them
// without a warning.
var smallWords = map[string]bool{
	"a": true, "an": true, "the": true, "and": true, "or": true, "with": true, "without": true, "of": true,
	"on": true, "in": true, "at": true, "to": true, "for": true, "by": true, "from": true, "into": true,
	"over": true, "under": true, "near": true, "between": true, "through": true, "across": true, "along": true,
	"some": true, "few": true, "many": true, "lots": true, "lot": true, "is": true, "are": true, "that": true,
	"this": true, "it": true, "its": true, "not": true, "no": true, "very": true, "covered": true, "made": true,
	"full": true, "little": true, "small": true, "large": true, "big": true, "thick": true, "thin": true,
	"texture": true, "textured": true, "surface": true, "seamless": true, "tileable": true, "tiling": true,
	"pattern": true, "material": true, "wall": true, "walls": true, "floor": true, "floors": true,
	"background": true, "closeup": true, "close-up": true, "top": true, "down": true, "view": true,
	"fresh": true, "deep": true, "rough": true, "smooth": true, "polished": true, "lush": true, "oak": true,
}

// wordAt is a keyword and its place in the prompt.
type wordAt struct {
	i int
	w string
}

// attachShapes gives each shape word the nearest material word of the
// prompt that is still a material (the preceding one on a tie: "dirt
// path", "path of dirt"). Each material takes its first shape only.
func attachShapes(shapes, mats []wordAt, kept []string) []Shape {
	var out []Shape
	for _, s := range shapes {
		best, bestD := "", math.MaxInt
		for _, m := range mats {
			if !slices.Contains(kept, m.w) {
				continue
			}
			d := 2 * (s.i - m.i)
			if d < 0 {
				d = -d + 1 // after the shape word: a little further
			}
			if d < bestD {
				best, bestD = m.w, d
			}
		}
		if best == "" || slices.ContainsFunc(out, func(o Shape) bool { return o.Material == best }) {
			continue
		}
		out = append(out, Shape{Material: best, Form: s.w})
	}
	return out
}

// Layout of prompts with several materials.
//
// A prompt naming one material fills the image with it. With several, the
// ELS machine alone lets the material with the most distinctive patches
// win everywhere (three grey stone textures for "grass, dirt path and
// mossy stones"), so the model lays the image out first: a smooth,
// tileable field per material, drawn from the model's seed, or the shape
// its shape word asks for, assigns every pixel a weight per material, and
// the denoiser's softmax adds the log of that weight to the logits of the
// bank patches of that material. While the noise is high this decides
// which material a region is made of; once the structure is there, the
// patch comparison dominates and the regions meet where their patches fit.
// The weights enter the graph as extra columns of the pixel features and
// extra rows of the bank (a one-hot of each patch's material), so the
// bias costs a few more dimensions of the Gemm the graph already runs.
const (
	// layoutSharpness scales the scores into log-weights: a region's
	// score leads by about 0.3 inside it, a bias of about 4.
	layoutSharpness = 12
	// layoutFloor bounds a log-weight from below.
	layoutFloor = -16
)

// layoutGroups returns, for a prompt with at least two materials, the
// material of each source (in source order) and the material names; nil
// otherwise.
func layoutGroups(sel Selection, sources int) ([]int, []string) {
	if len(sel.Materials) < 2 || sources != len(sel.Materials)*variantsPerMaterial {
		return nil, nil
	}
	g := make([]int, sources)
	for i := range g {
		g[i] = i / variantsPerMaterial
	}
	return g, sel.Materials
}

// layoutField is one material's part of the layout: its shape word's
// form, or "" for a smooth random field, standardised by mean and std so
// that every material expects an equal share.
type layoutField struct {
	form      string
	seed      uint64
	mean, std float64
}

// newLayout prepares the layout fields of the selection's materials.
func newLayout(sel Selection, names []string, seed uint64) []layoutField {
	fields := make([]layoutField, len(names))
	for g, name := range names {
		f := layoutField{seed: seed ^ hashString("layout "+name) ^ uint64(g+1)*0x9e3779b97f4a7c15, std: 1}
		for _, s := range sel.Shapes {
			if s.Material == name {
				f.form = s.Form
			}
		}
		if f.form == "" {
			const n = 32
			var sum, sq float64
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					v := fbm((float64(j)+0.5)/n, (float64(i)+0.5)/n, 2, 2, 3, 0.5, f.seed)
					sum, sq = sum+v, sq+v*v
				}
			}
			f.mean = sum / (n * n)
			f.std = math.Sqrt(max(sq/(n*n)-f.mean*f.mean, 1e-6))
		}
		fields[g] = f
	}
	return fields
}

// layoutScores writes each material's score at torus point (u, v); the
// highest score takes the pixel.
func (m *Model) layoutScores(u, v float64, out []float64) {
	for g, f := range m.layout {
		if f.form == "" {
			out[g] = 0.3 * (fbm(u, v, 2, 2, 3, 0.5, f.seed) - f.mean) / f.std
			continue
		}
		out[g] = 3*shapeMask(f.form, u, v, f.seed) - 1.5
	}
}

// shapeMask is 1 inside a shape word's region at torus point (u, v) and
// 0 outside, with soft edges: a winding band across the image ("path"),
// three bands ("stripes"), a frame along the edges ("border") or blobs
// ("patch"). Every shape but the border tiles.
func shapeMask(form string, u, v float64, seed uint64) float64 {
	g := newRNG(seed)
	phase, centre := g.float(), g.rangef(0.3, 0.7)
	switch form {
	case "path":
		c := centre + 0.12*math.Sin(2*math.Pi*(u+phase)) + 0.1*fbm(u, 0.5, 2, 1, 3, 0.5, seed+1)
		d := math.Abs(math.Remainder(v-c, 1))
		return 1 - smoothstep(0.07, 0.11, d)
	case "stripes":
		t := 3*v + 0.25*fbm(u, v, 2, 2, 3, 0.5, seed+2) + phase
		d := math.Abs(math.Remainder(t, 1))
		return 1 - smoothstep(0.14, 0.2, d)
	case "border":
		d := math.Min(math.Min(u, 1-u), math.Min(v, 1-v)) + 0.03*fbm(u, v, 4, 4, 2, 0.5, seed+3)
		return 1 - smoothstep(0.1, 0.14, d)
	case "patch":
		return smoothstep(0.12, 0.2, fbm(u, v, 3, 3, 3, 0.5, seed+4))
	}
	return 0
}

// layoutFeatures returns the layout's extra pixel features, [pixels][k]
// log-weights for the lh×lw grid of a level pooled by down on a w×h
// image, and the bank's extra rows, [k][n] one-hot materials.
func (m *Model) layoutFeatures(bk *patchBank, w, h, down, lw, lh int) (px, rows []float32) {
	k := len(m.groupNames)
	px = make([]float32, lw*lh*k)
	sc := make([]float64, k)
	for i := 0; i < lh; i++ {
		v := (float64(i*down) + float64(down)/2) / float64(h)
		for j := 0; j < lw; j++ {
			u := (float64(j*down) + float64(down)/2) / float64(w)
			m.layoutScores(u, v, sc)
			top := math.Inf(-1)
			for _, s := range sc {
				top = math.Max(top, s)
			}
			var z float64
			for _, s := range sc {
				z += math.Exp(layoutSharpness * (s - top))
			}
			lz := math.Log(z)
			for g, s := range sc {
				px[(i*lw+j)*k+g] = float32(math.Max(layoutSharpness*(s-top)-lz, layoutFloor))
			}
		}
	}
	rows = make([]float32, k*bk.n)
	for i, src := range bk.src {
		rows[m.groups[src]*bk.n+i] = 1
	}
	return px, rows
}

// MaterialShare is one requested material's share of an output image.
type MaterialShare struct {
	Material string
	Share    float64 // 0..1
}

// MaterialShares measures which material each part of a generated image
// is made of, from exemplar-match statistics: it compares the 5×5 patches
// around a grid of up to 4096 pixels with the finest level's bank and
// counts the material of each one's nearest bank patch. It returns the
// shares in prompt order, or nil when the prompt named one material (or
// the exemplars are the caller's).
func (m *Model) MaterialShares(ctx context.Context, img []float32, w, h int) ([]MaterialShare, error) {
	if len(m.groupNames) < 2 {
		return nil, nil
	}
	if len(img) != 3*w*h {
		return nil, fmt.Errorf("%s: material shares of a %dx%d image: %d values, want %d", Name, w, h, len(img), 3*w*h)
	}
	lv := m.fit(levelFor(m.schedule, 1, w, h))
	lv.Down = 1
	bk, err := m.bank(ctx, lv)
	if err != nil {
		return nil, err
	}
	p, r, dim := bk.p, bk.p/2, 3*bk.p*bk.p
	stride := max(1, int(math.Ceil(math.Sqrt(float64(w*h)/4096))))
	counts := make([]int, len(m.groupNames))
	vec := make([]float32, dim)
	f := make([]float64, bk.d)
	at := func(c, x, y int) float32 {
		if m.opts.Tile.X {
			x = wrapInt(x, w)
		} else {
			x = min(max(x, 0), w-1)
		}
		if m.opts.Tile.Y {
			y = wrapInt(y, h)
		} else {
			y = min(max(y, 0), h-1)
		}
		return img[(c*h+y)*w+x]
	}
	for y := stride / 2; y < h; y += stride {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for x := stride / 2; x < w; x += stride {
			k := 0
			for c := 0; c < 3; c++ {
				for ky := 0; ky < p; ky++ {
					for kx := 0; kx < p; kx++ {
						vec[k] = at(c, x+kx-r, y+ky-r)
						k++
					}
				}
			}
			for a := range f {
				f[a] = dot32(bk.proj[a*dim:(a+1)*dim], vec)
			}
			// Nearest bank patch: the largest 2·f·e − ‖e‖².
			best, bestS := 0, math.Inf(-1)
			for i := 0; i < bk.n; i++ {
				s := -float64(bk.sqnorm[i])
				for a, fa := range f {
					s += 2 * fa * float64(bk.feat[a*bk.n+i])
				}
				if s > bestS {
					best, bestS = i, s
				}
			}
			counts[m.groups[bk.src[best]]]++
		}
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	out := make([]MaterialShare, len(counts))
	for g, c := range counts {
		out[g] = MaterialShare{Material: m.groupNames[g], Share: float64(c) / float64(max(total, 1))}
	}
	return out, nil
}

// FormatShares writes shares as the note kiln shows: "grass 41%, dirt
// 22%, stone 37%".
func FormatShares(shares []MaterialShare) string {
	parts := make([]string, len(shares))
	for i, s := range shares {
		parts[i] = fmt.Sprintf("%s %.0f%%", s.Material, 100*s.Share)
	}
	return strings.Join(parts, ", ")
}

// unknownWarning is the warning for the prompt's words the model ignores,
// or "".
func unknownWarning(prompt string, unknown []string) string {
	if len(unknown) == 0 {
		return ""
	}
	q := make([]string, len(unknown))
	for i, w := range unknown {
		q[i] = fmt.Sprintf("%q", w)
	}
	return fmt.Sprintf("%s ignores the words it does not know in prompt %q: %s; it reads material keywords (%s), colours, overlays (mossy, snowy, ...) and shapes (path, patch, stripes, border); for anything else give the asset exemplars: images",
		Name, prompt, strings.Join(q, ", "), strings.Join(Materials(), ", "))
}
