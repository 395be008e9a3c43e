package generators

import (
	"bytes"
	"fmt"
	"image"
	"os"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/internal/atomicfile"
)

// inspectMaxSize bounds the images the inspect helpers decode.
const inspectMaxSize = 16384

// InspectSeams measures how visible the wrap-around seams of an image file
// are (`kiln inspect seams FILE`): per axis, the mean colour difference
// across the wrap boundary divided by the mean difference between
// neighbours inside the image (see imageops.Seams). About 1 is seamless;
// kiln's tileable outputs aim for 1.15 or less.
func InspectSeams(path string) (x, y float64, err error) {
	img, err := DecodeImage(path, inspectMaxSize)
	if err != nil {
		return 0, 0, err
	}
	x, y = imageops.Seams(imageops.FromImage(img))
	return x, y, nil
}

// InspectTile writes a 2×2 tiled preview of the image file at path to out
// (`kiln inspect tile FILE`), keeping 16-bit images 16-bit, so an artist
// can see whether it tiles. out is replaced atomically.
func InspectTile(path, out string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("inspect tile: %w", err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return fmt.Errorf("inspect tile: read %s: %w (kiln reads PNG and JPEG files)", path, err)
	}
	if cfg.Width > inspectMaxSize/2 || cfg.Height > inspectMaxSize/2 {
		return fmt.Errorf("inspect tile: %s is %dx%d; the preview would exceed %d pixels on a side", path, cfg.Width, cfg.Height, inspectMaxSize)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return fmt.Errorf("inspect tile: %w", err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return fmt.Errorf("inspect tile: decode %s: %w", path, err)
	}
	var buf bytes.Buffer
	if err := imageops.EncodePNG(&buf, imageops.Tile2x2Image(img), nil); err != nil {
		return fmt.Errorf("inspect tile: %w", err)
	}
	if err := atomicfile.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("inspect tile: %w", err)
	}
	return nil
}

// InspectRecipe reads the recipe of a PNG file (`kiln inspect recipe
// FILE`): kiln's own chunks, or an AUTOMATIC1111 "parameters" chunk
// written by another tool. A PNG without either is an error wrapping
// imageops.ErrNoRecipe.
func InspectRecipe(path string) (imageops.Recipe, error) {
	rec, err := readRecipeFile(path)
	if err != nil {
		return imageops.Recipe{}, fmt.Errorf("%s: %w", path, err)
	}
	return rec, nil
}

func readRecipeFile(path string) (imageops.Recipe, error) {
	f, err := os.Open(path)
	if err != nil {
		return imageops.Recipe{}, err
	}
	defer f.Close()
	return imageops.ReadRecipe(f)
}
