package generators

import (
	"context"
	"fmt"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/tiling"
)

// tileAxes converts a manifest tile mode into graph rewrite axes.
func tileAxes(t manifests.Tile) (tiling.Axes, error) {
	return tiling.ParseAxes(string(t))
}

// tiledComponents are the graphs whose convolutions must wrap around for
// a seamless image: the denoiser and the decoder that paints the pixels.
var tiledComponents = [...]string{models.UNet, models.VAEDecoder}

// tiledOptions returns the Diffuser options that load a folder model's
// circular-padding variant: its UNet and VAE decoder rewritten by package
// tiling and kept in kiln's cache (built on first use, found again by
// later builds), sharing the original's weight files.
func (s *modelStore) tiledOptions(ctx context.Context, e *folderEntry, axes tiling.Axes) (models.DiffuserOptions, error) {
	cache := s.rtOpts.CacheDir
	if cache == "" {
		var err error
		if cache, err = models.CacheDir(nil); err != nil {
			return models.DiffuserOptions{}, err
		}
	}
	graphs, data := map[string]string{}, map[string]string{}
	for _, c := range tiledComponents {
		g, err := tiling.Variant(ctx, e.folder.Path(c), axes, cache)
		if err != nil {
			return models.DiffuserOptions{}, fmt.Errorf("make the tileable (%s) variant of %s: %w", axes, c, err)
		}
		graphs[c] = g.Path
		if g.ExternalDataDir != "" {
			// The weights could not be hard-linked beside the rewritten
			// graph (another file system): read them where they are.
			data[c] = g.ExternalDataDir
		}
		s.log.Debug("tileable graph variant", "component", c, "axes", axes.String(), "path", g.Path, "rewritten", g.Rewritten, "weights", g.ExternalDataDir)
	}
	return models.DiffuserOptions{Graphs: graphs, GraphData: data, Variant: axes.Label(), Log: s.log}, nil
}
