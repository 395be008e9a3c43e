package preview

import "time"

// State is everything the preview page shows: the project's assets,
// atlases and materials with their current output files, per-stage status
// and errors. Publish sends it to every open page. Paths are relative to
// the output folder and slash-separated; the page loads them from /out/.
type State struct {
	// Project names the project in the page title.
	Project string `json:"project,omitempty"`
	// Seq is set by Publish: it counts published states.
	Seq int `json:"seq"`
	// Time is when the build finished; Publish sets it when zero.
	Time time.Time `json:"time"`
	// Summary is the build's status line ("2 built, 14 cached, 0 failed
	// in 1.2s").
	Summary string `json:"summary,omitempty"`
	// Changed are the project files the build was for.
	Changed []string `json:"changed,omitempty"`
	// OK is false when the build failed or the project could not be
	// loaded.
	OK bool `json:"ok"`
	// Errors are project-wide problems in full (invalid YAML, unknown
	// fields, cycles), "file:line:col: message". When the project could
	// not be loaded, Assets etc. are the last good ones.
	Errors    []string   `json:"errors,omitempty"`
	Assets    []Asset    `json:"assets"`
	Atlases   []Atlas    `json:"atlases"`
	Materials []Material `json:"materials"`
}

// Status values of assets and stages, as the pipeline reports them, plus
// "pending" for entries no build has reached yet.
const (
	StatusBuilt       = "built"
	StatusCached      = "cached"
	StatusFailed      = "failed"
	StatusSkipped     = "skipped"
	StatusInterrupted = "interrupted"
	StatusPending     = "pending"
)

// File is one output file.
type File struct {
	// Path is relative to the output folder, slash-separated.
	Path string `json:"path"`
	// Label says what the file is ("albedo", "normal", "frame 3", "page
	// 1", "Godot SpriteFrames").
	Label string `json:"label,omitempty"`
	// Version changes whenever the file's content does: its SHA-256 from
	// the build report, or (filled by Publish when empty) its size and
	// modification time. The page adds it to the URL so browsers never
	// show a stale image.
	Version string `json:"version,omitempty"`
}

// Stage is one pipeline stage of an entry.
type Stage struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	// DurationMS is how long it took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// Error is the stage's failure in full, "file:line:col: message".
	Error string `json:"error,omitempty"`
}

// Asset is one manifest asset.
type Asset struct {
	ID string `json:"id"`
	// Kind is the manifest kind: image, texture, tileable, sprite-sheet,
	// concept-art.
	Kind string `json:"kind"`
	// Status sums up its stages: failed if any failed, else built if any
	// built, else cached, skipped, interrupted or pending.
	Status string `json:"status"`
	// Where is the manifest position of the entry, "file:line:col".
	Where  string `json:"where,omitempty"`
	Prompt string `json:"prompt,omitempty"`
	// Images are its image outputs; the first is the main one (albedo
	// for textures, the sheet for sprite sheets).
	Images []File `json:"images,omitempty"`
	// Files are its other outputs (metadata JSON, Godot resources).
	Files []File `json:"files,omitempty"`
	// Tile is "xy", "x" or "y" for images that wrap around seamlessly
	// (tileables, tiling textures); the page shows them repeated.
	Tile string `json:"tile,omitempty"`
	// Sprite is set for sprite sheets.
	Sprite *Sprite  `json:"sprite,omitempty"`
	Stages []Stage  `json:"stages,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// Sprite tells the page how to animate a sprite sheet: from Frames when
// the frames are separate images, else by cutting Sheet into a grid of
// Columns × Rows.
type Sprite struct {
	FPS    float64 `json:"fps"`
	Frames int     `json:"frames"`
	Loop   bool    `json:"loop"`
	// Columns and Rows of the sheet grid.
	Columns int `json:"columns,omitempty"`
	Rows    int `json:"rows,omitempty"`
	// Sheet is the sheet image, when there is one.
	Sheet *File `json:"sheet,omitempty"`
	// FrameFiles are the frames as separate images, in order.
	FrameFiles []File `json:"frame_files,omitempty"`
	// PixelArt asks for nearest-neighbour scaling.
	PixelArt bool `json:"pixel_art,omitempty"`
}

// Atlas is one texture atlas.
type Atlas struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Where  string `json:"where,omitempty"`
	// Assets are the ids packed into it.
	Assets []string `json:"assets,omitempty"`
	// Pages are the atlas images; Files the data files (JSON, .tres,
	// .atlas).
	Pages  []File   `json:"pages,omitempty"`
	Files  []File   `json:"files,omitempty"`
	Stages []Stage  `json:"stages,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// Material is one glTF material.
type Material struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Where  string `json:"where,omitempty"`
	// GLTF is the .gltf file (external .bin and PNGs) the page's viewer
	// loads; GLB the self-contained .glb. Either may be nil.
	GLTF *File `json:"gltf,omitempty"`
	GLB  *File `json:"glb,omitempty"`
	// Preview is the mesh written with it: plane, cube or sphere.
	Preview string `json:"preview,omitempty"`
	// Textures are the images it uses.
	Textures []File   `json:"textures,omitempty"`
	Stages   []Stage  `json:"stages,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

// files calls fn for every File in the state, so Publish can fill in
// versions.
func (s *State) files(fn func(*File)) {
	each := func(fs []File) {
		for i := range fs {
			fn(&fs[i])
		}
	}
	for i := range s.Assets {
		a := &s.Assets[i]
		each(a.Images)
		each(a.Files)
		if a.Sprite != nil {
			if a.Sprite.Sheet != nil {
				fn(a.Sprite.Sheet)
			}
			each(a.Sprite.FrameFiles)
		}
	}
	for i := range s.Atlases {
		each(s.Atlases[i].Pages)
		each(s.Atlases[i].Files)
	}
	for i := range s.Materials {
		m := &s.Materials[i]
		if m.GLTF != nil {
			fn(m.GLTF)
		}
		if m.GLB != nil {
			fn(m.GLB)
		}
		each(m.Textures)
	}
}

// clone returns a deep copy of s, so Publish can fill versions without
// touching the caller's slices.
func (s State) clone() State {
	c := s
	c.Changed = append([]string(nil), s.Changed...)
	c.Errors = append([]string(nil), s.Errors...)
	c.Assets = make([]Asset, len(s.Assets))
	for i, a := range s.Assets {
		a.Images = append([]File(nil), a.Images...)
		a.Files = append([]File(nil), a.Files...)
		if a.Sprite != nil {
			sp := *a.Sprite
			if sp.Sheet != nil {
				sh := *sp.Sheet
				sp.Sheet = &sh
			}
			sp.FrameFiles = append([]File(nil), sp.FrameFiles...)
			a.Sprite = &sp
		}
		c.Assets[i] = a
	}
	c.Atlases = make([]Atlas, len(s.Atlases))
	for i, a := range s.Atlases {
		a.Pages = append([]File(nil), a.Pages...)
		a.Files = append([]File(nil), a.Files...)
		c.Atlases[i] = a
	}
	c.Materials = make([]Material, len(s.Materials))
	for i, m := range s.Materials {
		if m.GLTF != nil {
			g := *m.GLTF
			m.GLTF = &g
		}
		if m.GLB != nil {
			g := *m.GLB
			m.GLB = &g
		}
		m.Textures = append([]File(nil), m.Textures...)
		c.Materials[i] = m
	}
	return c
}
