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
	graphs := map[string]string{}
	for _, c := range tiledComponents {
		g, err := tiling.Variant(ctx, e.folder.Path(c), axes, cache)
		if err != nil {
			return models.DiffuserOptions{}, fmt.Errorf("make the tileable (%s) variant of %s: %w", axes, c, err)
		}
		if g.ExternalDataDir != "" {
			// The Diffuser cannot yet point a replaced graph at another
			// folder's weights.
			return models.DiffuserOptions{}, fmt.Errorf("make the tileable (%s) variant of %s: its weights could not be hard-linked into kiln's cache %s (another file system?); put the cache on the model's file system (KILN_CACHE_HOME)", axes, c, cache)
		}
		s.log.Debug("tileable graph variant", "component", c, "axes", axes.String(), "path", g.Path, "rewritten", g.Rewritten)
		graphs[c] = g.Path
	}
	return models.DiffuserOptions{Graphs: graphs, Variant: axes.Label(), Log: s.log}, nil
}
