package imageops_test

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"math"

	"github.com/kiln-dev/kiln/generators/imageops"
)

// A tileable texture's maps are derived with wrap-around edges, so they
// tile too; Seams checks it.
func ExampleDerivePBR() {
	const n = 64
	albedo := imageops.NewFloat(n, n, 3)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			v := float32(0.5 + 0.3*math.Sin(2*math.Pi*(2*float64(x)+3*float64(y))/n))
			albedo.Set(x, y, 0, v)
			albedo.Set(x, y, 1, v)
			albedo.Set(x, y, 2, v)
		}
	}
	edges, _ := imageops.ParseTile("xy")
	o := imageops.DefaultPBROptions()
	o.Edges = edges
	maps, err := imageops.DerivePBR(context.Background(), albedo, o)
	if err != nil {
		fmt.Println(err)
		return
	}
	x, y := imageops.Seams(maps.Normal)
	fmt.Printf("normal map seams: x %.2f, y %.2f\n", x, y)
	// Output: normal map seams: x 1.00, y 1.00
}

// Every PNG kiln writes carries its recipe.
func ExampleEncodePNG() {
	img := imageops.Constant(8, 8, 0.2, 0.4, 0.6).NRGBA()
	rec := imageops.Recipe{Prompt: "mossy stone", Seed: 42, Steps: 20, Guidance: 7, Scheduler: "euler", Version: "0.1.0"}
	var buf bytes.Buffer
	if err := imageops.EncodePNG(&buf, img, &rec); err != nil {
		fmt.Println(err)
		return
	}
	back, err := imageops.ReadRecipe(&buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range back.Fields()[:3] {
		fmt.Printf("%s: %q\n", f[0], f[1])
	}
	// Output:
	// prompt: "mossy stone"
	// negative_prompt: ""
	// seed: "42"
}

// Sprites are generated on a flat key colour and keyed out.
func ExampleChromaKey() {
	img := imageops.Constant(3, 1, 0, 1, 0) // pure green
	img.Set(1, 0, 0, 1)                     // the middle pixel is yellow-ish red
	img.Set(1, 0, 1, 0.2)
	out, err := imageops.ChromaKey(img, imageops.DefaultKeyOptions(color.NRGBA{0, 255, 0, 255}))
	if err != nil {
		fmt.Println(err)
		return
	}
	for x := 0; x < 3; x++ {
		fmt.Printf("alpha %.0f ", out.At(x, 0, 3))
	}
	fmt.Println()
	// Output: alpha 0 alpha 1 alpha 0
}
