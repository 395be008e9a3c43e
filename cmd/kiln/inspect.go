package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-dev/kiln/generators"
)

func (a *app) inspectCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Look inside built images: seams, a tiled preview, the recipe",
	}
	var asJSON bool
	seams := &cobra.Command{
		Use:   "seams FILE...",
		Short: "Measure how visible each image's wrap-around seams are (about 1 is seamless)",
		Long: `For each image, print the mean colour difference across the wrap-around
boundary divided by the mean difference between neighbouring pixels inside
the image, per axis. About 1 means the seam is as invisible as any other
pixel boundary; kiln's tileable outputs aim for 1.15 or less.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			type row struct {
				File string  `json:"file"`
				X    float64 `json:"x"`
				Y    float64 `json:"y"`
			}
			var rows []row
			for _, f := range args {
				x, y, err := generators.InspectSeams(f)
				if err != nil {
					return withCode(exitFailed, err)
				}
				rows = append(rows, row{f, x, y})
			}
			if asJSON {
				a.writeJSON(rows)
				return nil
			}
			for _, r := range rows {
				fmt.Fprintf(a.stdout, "%s: x %.3f  y %.3f\n", r.File, r.X, r.Y)
			}
			return nil
		},
	}
	seams.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var out string
	tile := &cobra.Command{
		Use:   "tile FILE",
		Short: "Write a 2x2 tiled preview of an image, to see whether it tiles",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dst := out
			if dst == "" {
				ext := filepath.Ext(args[0])
				dst = strings.TrimSuffix(args[0], ext) + ".tiled.png"
			}
			if err := generators.InspectTile(args[0], dst); err != nil {
				return withCode(exitFailed, err)
			}
			if !a.quiet {
				fmt.Fprintf(a.stdout, "wrote %s\n", dst)
			}
			return nil
		},
	}
	tile.Flags().StringVarP(&out, "output", "o", "", "where to write the preview (default: FILE.tiled.png beside it)")

	var recipeJSON bool
	recipe := &cobra.Command{
		Use:   "recipe FILE",
		Short: "Print the recipe a PNG carries (prompt, seed, model, ...) to reproduce it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rec, err := generators.InspectRecipe(args[0])
			if err != nil {
				return withCode(exitFailed, err)
			}
			fields := rec.Fields()
			if recipeJSON {
				m := make(map[string]string, len(fields))
				for _, f := range fields {
					m[f[0]] = f[1]
				}
				a.writeJSON(m)
				return nil
			}
			for _, f := range fields {
				fmt.Fprintf(a.stdout, "%-16s %s\n", f[0]+":", f[1])
			}
			return nil
		},
	}
	recipe.Flags().BoolVar(&recipeJSON, "json", false, "print JSON")
	cmd.AddCommand(seams, tile, recipe)
	return cmd
}
