package exporters

import (
	"context"
	"fmt"
	"path"
	"path/filepath"

	"github.com/kiln-dev/kiln/exporters/atlas"
	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
)

// atlasVersion changes whenever an atlas stage would write different bytes
// for the same inputs.
const atlasVersion = "2"

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
}

// atlasStage plans the packing and export of atlas a. Its files are known
// only once the sprites are packed (the page count), so the stage
// publishes everything it writes into the folder named by the atlas id.
func atlasStage(p *manifests.Project, a *manifests.Atlas) (pipeline.Stage, error) {
	var inputs []atlasInput
	var errs manifests.ErrorList
	nearest := false
	for _, id := range a.Assets {
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
				inputs = append(inputs, atlasInput{Name: fmt.Sprintf("%s/%d", id, i), Image: f, Sheet: id, Frame: i, Anim: anim})
			}
			continue
		}
		ref, err := generators.MapImage(asset, "")
		if err != nil {
			errs = append(errs, &manifests.Error{Pos: a.At("include"), Field: "include", Msg: err.Error()})
			continue
		}
		inputs = append(inputs, atlasInput{Name: id, Image: ref})
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
	return pipeline.Stage{
		ID:         AtlasStage(a.ID),
		Asset:      a.ID,
		Kind:       "atlas.pack",
		Version:    atlasVersion,
		Params:     map[string]any{"settings": keySettings, "inputs": inputs, "res": resDir},
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
				sp := atlas.Sprite{Name: in.Name, Image: img}
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
			packed, err := atlas.Pack(ctx, sprites, settings)
			if err != nil {
				return fmt.Errorf("atlas %s: %w", a.ID, err)
			}
			files, err := packed.Files(outDir, base)
			if err != nil {
				return fmt.Errorf("atlas %s: %w", a.ID, err)
			}
			for _, f := range files {
				if err := r.WriteFile(f.Name, f.Data); err != nil {
					return err
				}
			}
			r.Note("pages", fmt.Sprint(len(packed.Pages)))
			r.Note("occupancy", fmt.Sprintf("%.3f", packed.Occupancy()))
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
