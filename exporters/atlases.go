package exporters

import (
	"context"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/kiln-dev/kiln/exporters/atlas"
	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
)

// atlasVersion changes whenever an atlas stage would write different bytes
// for the same inputs.
const atlasVersion = "3"

// AtlasStage is the ID of atlas id's packing stage.
func AtlasStage(id string) string { return id + ":atlas" }

// atlasFormats maps manifest format names to the atlas package's.
var atlasFormats = map[string]string{
	manifests.FormatJSONHash:    atlas.FormatJSONHash,
	manifests.FormatJSONArray:   atlas.FormatJSONArray,
	manifests.FormatPhaserMulti: atlas.FormatPhaser,
	manifests.FormatGodot:       atlas.FormatGodot,
	manifests.FormatLibGDX:      atlas.FormatLibGDX,
}

// atlasInput is one sprite of an atlas and where its pixels come from.
type atlasInput struct {
	Name  string               `json:"name"`
	Image generators.OutputRef `json:"image"`
	// Sheet and Frame are set for sprite-sheet frames; Anim names the
	// stage output holding the sheet's animation metadata.
	Sheet string               `json:"sheet,omitempty"`
	Frame int                  `json:"frame,omitempty"`
	Anim  generators.OutputRef `json:"anim,omitempty"`
	// Pivot and Slice come from the atlas's sprites: entry for the asset.
	Pivot *[2]float64 `json:"pivot,omitempty"`
	Slice *[4]int     `json:"slice,omitempty"`
}

// scaleSuffix is the file name suffix of an atlas variant, TexturePacker's
// "@0.5x" style ("" for scale 1), which PixiJS also reads as the
// resolution.
func scaleSuffix(scale float64) string {
	if scale == 1 {
		return ""
	}
	return "@" + strconv.FormatFloat(scale, 'g', -1, 64) + "x"
}

// atlasStage plans the packing and export of atlas a. Its files are known
// only once the sprites are packed (the page count), so the stage
// publishes everything it writes into the folder named by the atlas id.
func atlasStage(p *manifests.Project, a *manifests.Atlas) (pipeline.Stage, error) {
	var inputs []atlasInput
	var errs manifests.ErrorList
	nearest := false
	for _, id := range slices.Sorted(maps.Keys(a.Sprites)) {
		if !slices.Contains(a.Assets, id) {
			errs = append(errs, &manifests.Error{Pos: a.At("sprites." + id), Field: "sprites." + id,
				Msg: fmt.Sprintf("asset %q is not included in this atlas", id), Hint: "add it to include, or remove its sprites entry"})
		}
	}
	for _, id := range a.Assets {
		extra := a.Sprites[id]
		asset := p.Asset(id)
		if asset == nil {
			errs = append(errs, &manifests.Error{Pos: a.At("include"), Field: "include", Msg: fmt.Sprintf("unknown asset %q", id)})
			continue
		}
		if asset.Sprite != nil && asset.Sprite.PixelArt != nil {
			nearest = true
		}
		if asset.Kind == manifests.KindSpriteSheet {
			frames, anim, err := generators.Frames(asset)
			if err != nil {
				errs = append(errs, &manifests.Error{Pos: a.At("include"), Field: "include", Msg: err.Error()})
				continue
			}
			for i, f := range frames {
				inputs = append(inputs, atlasInput{Name: fmt.Sprintf("%s/%d", id, i), Image: f, Sheet: id, Frame: i, Anim: anim, Pivot: extra.Pivot, Slice: extra.Slice})
			}
			continue
		}
		ref, err := generators.MapImage(asset, "")
		if err != nil {
			errs = append(errs, &manifests.Error{Pos: a.At("include"), Field: "include", Msg: err.Error()})
			continue
		}
		inputs = append(inputs, atlasInput{Name: id, Image: ref, Pivot: extra.Pivot, Slice: extra.Slice})
	}
	if len(errs) > 0 {
		return pipeline.Stage{}, errs
	}

	settings := atlas.Settings{
		MaxSize:          a.MaxSize,
		Size:             atlas.SizeMode(a.Size),
		Square:           a.Square,
		Padding:          a.Padding,
		Border:           a.Border,
		Extrude:          a.Extrude,
		Trim:             -1,
		Rotation:         a.Rotation,
		Dedupe:           a.Dedupe,
		PremultiplyAlpha: a.PremultiplyAlpha,
		Heuristic:        a.Heuristic,
	}
	if a.Trim {
		settings.Trim = a.TrimAlpha
	}
	if nearest {
		settings.Filter = atlas.FilterNearest
	}
	for _, f := range a.Formats {
		settings.Formats = append(settings.Formats, atlasFormats[f])
	}
	// Godot resources name the pages by res:// paths relative to the Godot
	// project root, which depends on where the output folder is.
	outDir := filepath.Join(p.Root, filepath.FromSlash(p.Config.Output), filepath.FromSlash(a.ID))
	resDir := ""
	if containsString(settings.Formats, atlas.FormatGodot) {
		root := filepath.Join(p.Root, filepath.FromSlash(p.Config.Godot.ProjectRoot))
		var err error
		if resDir, err = atlas.GodotResDir(root, outDir); err != nil {
			return pipeline.Stage{}, manifests.ErrorList{{Pos: a.At("formats"), Field: "formats", Msg: err.Error(), Hint: "set godot.project_root in kiln.yaml to the folder holding project.godot"}}
		}
		settings.GodotRoot = root
	}

	var deps []string
	seen := map[string]bool{}
	for _, in := range inputs {
		for _, st := range []string{in.Image.Stage, in.Anim.Stage} {
			if st != "" && !seen[st] {
				seen[st] = true
				deps = append(deps, st)
			}
		}
	}
	// The key holds the res:// folder, not the machine's absolute paths,
	// so moving the project keeps the cache.
	keySettings := settings
	keySettings.GodotRoot = ""
	base := path.Base(a.ID)
	maxSize := p.Config.Limits.MaxImageSize
	scales := a.Scales
	if len(scales) == 0 {
		scales = []float64{1}
	}
	return pipeline.Stage{
		ID:         AtlasStage(a.ID),
		Asset:      a.ID,
		Kind:       "atlas.pack",
		Version:    atlasVersion,
		Params:     map[string]any{"settings": keySettings, "inputs": inputs, "res": resDir, "scales": scales},
		Deps:       deps,
		DepWhere:   depWhere(deps, a.At("include").String()),
		Where:      a.Pos.String(),
		PublishDir: a.ID,
		Run: func(ctx context.Context, r *pipeline.Run) error {
			sprites := make([]atlas.Sprite, 0, len(inputs))
			anims := map[generators.OutputRef]*generators.Animation{}
			for _, in := range inputs {
				file, err := r.Input(in.Image.Stage, in.Image.Output)
				if err != nil {
					return err
				}
				img, err := generators.DecodeImage(file, maxSize)
				if err != nil {
					return fmt.Errorf("sprite %s: %w", in.Name, err)
				}
				if in.Slice != nil {
					id := in.Name
					if in.Sheet != "" {
						id = in.Sheet
					}
					if err := atlas.CheckSlice(*in.Slice, img.Bounds().Size()); err != nil {
						return fmt.Errorf("%s: atlas %s: sprites.%s.slice: %w", a.At("sprites."+id+".slice"), a.ID, id, err)
					}
				}
				sp := atlas.Sprite{Name: in.Name, Image: img, Pivot: in.Pivot, Slice: in.Slice}
				if in.Sheet != "" {
					an := anims[in.Anim]
					if an == nil {
						af, err := r.Input(in.Anim.Stage, in.Anim.Output)
						if err != nil {
							return err
						}
						if an, err = generators.ReadAnimation(af); err != nil {
							return err
						}
						anims[in.Anim] = an
					}
					// The animation is named by the asset id in every
					// format: "fx/lava-flow" in Phaser, PixiJS, Godot
					// and libGDX alike.
					sp.Animation, sp.Frame = in.Sheet, in.Frame
					sp.FPS, sp.Loop = an.FPS, an.Loop
				}
				sprites = append(sprites, sp)
			}
			// Every scale is a complete atlas, packed afresh from the
			// resampled sprites.
			var warnings []string
			for _, scale := range scales {
				vs := settings
				vs.Scale = scale
				suffix := scaleSuffix(scale)
				packed, err := atlas.Pack(ctx, sprites, vs)
				if err != nil {
					return fmt.Errorf("atlas %s (%s): %w", a.ID, a.Pos, err)
				}
				files, err := packed.Files(outDir, base+suffix)
				if err != nil {
					return fmt.Errorf("atlas %s (%s): %w", a.ID, a.Pos, err)
				}
				for _, f := range files {
					if err := r.WriteFile(f.Name, f.Data); err != nil {
						return err
					}
				}
				r.Note("pages"+suffix, fmt.Sprint(len(packed.Pages)))
				r.Note("occupancy"+suffix, fmt.Sprintf("%.3f", packed.Occupancy()))
				for _, w := range packed.Warnings() {
					if !slices.Contains(warnings, w) {
						warnings = append(warnings, w)
					}
				}
			}
			for i, w := range warnings {
				key := "warning"
				if i > 0 {
					key += strconv.Itoa(i + 1)
				}
				w = fmt.Sprintf("atlas %s (%s): %s", a.ID, a.Pos, w)
				r.Note(key, w)
				r.Log.Warn(w)
			}
			return nil
		},
	}, nil
}

// depWhere points every dependency edge at the same manifest position.
func depWhere(deps []string, where string) map[string]string {
	m := make(map[string]string, len(deps))
	for _, d := range deps {
		m[d] = where
	}
	return m
}
