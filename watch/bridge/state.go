package bridge

import (
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
	"github.com/kiln-dev/kiln/watch"
	"github.com/kiln-dev/kiln/watch/preview"
)

// State builds what the preview page shows after a build.
//
// p is the loaded project and rep the build's report; res is the build's
// watch.Result (for the summary and errors). When the project could not be
// loaded or its stage graph is invalid (p or rep nil), the entries of prev,
// the state published last, are kept as they are (kiln leaves the last
// good outputs in place) and res.Errors are shown as project errors.
//
// Stages are matched to entries by pipeline.Stage.Asset. A stage whose
// kind starts with "atlas" belongs to the atlas of that id; one whose
// kind mentions "gltf" or starts with "material", or that publishes a
// .gltf or .glb file, to the material; any other to the asset. Published
// images (.png, .jpg, .jpeg, .webp) become the entry's images, labelled
// with their output name without extension; other published files are
// listed as files. For sprite sheets, images whose output name contains
// "frame" are the frames (in name order) and the one containing "sheet"
// (else the first other image) is the sheet.
func State(p *manifests.Project, rep *pipeline.Report, res watch.Result, prev preview.State) preview.State {
	st := preview.State{
		Project: prev.Project,
		Summary: res.Summary(),
		Changed: res.Changed,
		OK:      res.OK(),
	}
	if p == nil || rep == nil {
		st.Errors = res.Errors
		st.Assets, st.Atlases, st.Materials = prev.Assets, prev.Atlases, prev.Materials
		return st
	}
	if p.Root != "" {
		st.Project = filepath.Base(p.Root)
	}
	// Errors of failed stages are shown on their entries; the rest
	// (publishing problems, say) at the top.
	shown := map[string]bool{}
	for _, s := range rep.Stages {
		if s.Error != nil {
			shown[s.Error.Error()] = true
		}
	}
	for _, e := range res.Errors {
		if !shown[e] {
			st.Errors = append(st.Errors, e)
		}
	}

	type group struct{ asset, atlas, material []pipeline.StageReport }
	groups := map[string]*group{}
	for _, s := range rep.Stages {
		g := groups[s.Asset]
		if g == nil {
			g = &group{}
			groups[s.Asset] = g
		}
		switch stageRole(s) {
		case "atlas":
			g.atlas = append(g.atlas, s)
		case "material":
			g.material = append(g.material, s)
		default:
			g.asset = append(g.asset, s)
		}
	}
	get := func(id string) *group {
		if g := groups[id]; g != nil {
			return g
		}
		return &group{}
	}

	assetImages := map[string][]preview.File{}
	for _, a := range p.Assets {
		stages := get(a.ID).asset
		images, files := outputs(stages)
		pa := preview.Asset{
			ID:     a.ID,
			Kind:   string(a.Kind),
			Status: summarise(stages),
			Where:  a.Pos.String(),
			Prompt: a.Prompt,
			Files:  files,
			Stages: stageViews(stages),
		}
		switch {
		case a.Tileable != nil && a.Tileable.Tile != manifests.TileNone:
			pa.Tile = string(a.Tileable.Tile)
		case a.Texture != nil && a.Texture.Tile != manifests.TileNone && a.Texture.Tile != "":
			pa.Tile = string(a.Texture.Tile)
		}
		if a.Sprite != nil {
			pa.Sprite, images = sprite(a.Sprite, images)
		}
		pa.Images = mainFirst(images)
		assetImages[a.ID] = pa.Images
		st.Assets = append(st.Assets, pa)
	}
	for _, at := range p.Atlases {
		stages := get(at.ID).atlas
		pages, files := outputs(stages)
		for i := range pages {
			if len(pages) > 1 {
				pages[i].Label = "page " + strconv.Itoa(i+1)
			}
		}
		st.Atlases = append(st.Atlases, preview.Atlas{
			ID:     at.ID,
			Status: summarise(stages),
			Where:  at.Pos.String(),
			Assets: at.Assets,
			Pages:  pages,
			Files:  files,
			Stages: stageViews(stages),
		})
	}
	for _, m := range p.Materials {
		stages := get(m.ID).material
		images, files := outputs(stages)
		pm := preview.Material{
			ID:       m.ID,
			Status:   summarise(stages),
			Where:    m.Pos.String(),
			Preview:  m.Preview,
			Textures: images,
			Stages:   stageViews(stages),
		}
		for i := range files {
			f := files[i]
			switch strings.ToLower(path.Ext(f.Path)) {
			case ".gltf":
				if pm.GLTF == nil {
					pm.GLTF = &f
				}
			case ".glb":
				if pm.GLB == nil {
					pm.GLB = &f
				}
			}
		}
		if len(pm.Textures) == 0 {
			// The material's PNGs are the textures' own outputs.
			for _, r := range m.Refs() {
				if f, ok := findImage(assetImages[r.Asset], r.Map); ok && !hasFile(pm.Textures, f.Path) {
					f.Label = r.Map
					if f.Label == "" {
						f.Label = r.Asset
					}
					pm.Textures = append(pm.Textures, f)
				}
			}
		}
		st.Materials = append(st.Materials, pm)
	}
	return st
}

// stageRole says which kind of entry a stage belongs to.
func stageRole(s pipeline.StageReport) string {
	k := strings.ToLower(s.Kind)
	switch {
	case strings.HasPrefix(k, "atlas"):
		return "atlas"
	case strings.Contains(k, "gltf") || strings.HasPrefix(k, "material"):
		return "material"
	}
	for _, o := range s.Outputs {
		if e := strings.ToLower(path.Ext(o.Path)); e == ".gltf" || e == ".glb" {
			return "material"
		}
	}
	return "asset"
}

// isImage reports whether a published path is an image the page can show.
func isImage(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".png", ".jpg", ".jpeg", ".webp", ".gif":
		return true
	}
	return false
}

// outputs splits the published outputs of stages into images and other
// files, in stage order, each path once, versioned by content hash.
func outputs(stages []pipeline.StageReport) (images, files []preview.File) {
	seen := map[string]bool{}
	for _, s := range stages {
		outs := append([]pipeline.OutputReport(nil), s.Outputs...)
		sort.SliceStable(outs, func(i, j int) bool { return naturalLess(outs[i].Name, outs[j].Name) })
		for _, o := range outs {
			if o.Path == "" || seen[o.Path] {
				continue
			}
			seen[o.Path] = true
			f := preview.File{Path: o.Path, Label: strings.TrimSuffix(o.Name, path.Ext(o.Name)), Version: shortHash(o.SHA256)}
			if isImage(o.Path) {
				images = append(images, f)
			} else {
				f.Label = path.Base(o.Path)
				files = append(files, f)
			}
		}
	}
	return images, files
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// mainFirst moves the image that best represents the entry to the front:
// the albedo or base colour, a plain image, or a sheet.
func mainFirst(images []preview.File) []preview.File {
	best := -1
	for i, f := range images {
		l := strings.ToLower(f.Label)
		if l == "albedo" || l == "base" || l == "basecolor" || l == "base_color" || l == "image" || l == "sheet" {
			best = i
			break
		}
	}
	if best <= 0 {
		return images
	}
	out := append([]preview.File{images[best]}, images[:best]...)
	return append(out, images[best+1:]...)
}

// sprite builds the animation description of a sprite sheet from its
// options and images, and returns the images without the frames.
func sprite(o *manifests.SpriteOptions, images []preview.File) (*preview.Sprite, []preview.File) {
	sp := &preview.Sprite{FPS: o.FPS, Frames: o.Frames, Loop: o.Loop, Columns: o.Columns, PixelArt: o.PixelArt != nil}
	var rest []preview.File
	for _, f := range images {
		if strings.Contains(strings.ToLower(f.Label), "frame") {
			sp.FrameFiles = append(sp.FrameFiles, f)
		} else {
			rest = append(rest, f)
		}
	}
	for i := range rest {
		if strings.Contains(strings.ToLower(rest[i].Label), "sheet") {
			f := rest[i]
			sp.Sheet = &f
			break
		}
	}
	if sp.Sheet == nil && len(rest) > 0 {
		f := rest[0]
		sp.Sheet = &f
	}
	n := sp.Frames
	if n <= 0 {
		n = len(sp.FrameFiles)
	}
	if sp.Columns <= 0 && n > 0 {
		sp.Columns = ceilSqrt(n)
	}
	if sp.Columns > 0 && n > 0 {
		sp.Rows = (n + sp.Columns - 1) / sp.Columns
	}
	return sp, rest
}

// ceilSqrt is the smallest c with c*c >= n: the columns of an about
// square grid.
func ceilSqrt(n int) int {
	c := 1
	for c*c < n {
		c++
	}
	return c
}

// findImage returns the image labelled name (a texture map), or the first
// image when name is empty.
func findImage(images []preview.File, name string) (preview.File, bool) {
	for _, f := range images {
		if name == "" || strings.EqualFold(f.Label, name) {
			return f, true
		}
	}
	if name == manifests.MapAlbedo && len(images) > 0 {
		// A texture's albedo is its generated image ("image.png"), which
		// mainFirst put first.
		return images[0], true
	}
	return preview.File{}, false
}

func hasFile(fs []preview.File, p string) bool {
	for _, f := range fs {
		if f.Path == p {
			return true
		}
	}
	return false
}

// summarise gives an entry the status of its stages: failed if any
// failed, else interrupted, skipped, built, cached, or pending when no
// stage reported.
func summarise(stages []pipeline.StageReport) string {
	if len(stages) == 0 {
		return preview.StatusPending
	}
	has := map[pipeline.Status]bool{}
	for _, s := range stages {
		has[s.Status] = true
	}
	for _, s := range []pipeline.Status{pipeline.StatusFailed, pipeline.StatusInterrupted, pipeline.StatusSkipped, pipeline.StatusBuilt, pipeline.StatusCached} {
		if has[s] {
			return string(s)
		}
	}
	return string(stages[0].Status)
}

// stageViews converts stage reports for the page.
func stageViews(stages []pipeline.StageReport) []preview.Stage {
	out := make([]preview.Stage, 0, len(stages))
	for _, s := range stages {
		v := preview.Stage{ID: s.ID, Kind: s.Kind, Status: string(s.Status), DurationMS: float64(s.Duration) / 1e6}
		if s.Error != nil {
			v.Error = s.Error.Error()
		}
		out = append(out, v)
	}
	return out
}

// naturalLess orders names with numbers by value: frame2 < frame10.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.Atoi(a[:da])
			nb, _ := strconv.Atoi(b[:db])
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

// digits counts the leading decimal digits of s (at most 9, so Atoi
// cannot overflow).
func digits(s string) int {
	n := 0
	for n < len(s) && n < 9 && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return n
}
