package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/spf13/cobra"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
)

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a starter project (kiln.yaml, a manifest, editor schemas)",
		Long: `Write a starter project into DIR (default: the current folder): kiln.yaml,
a manifest with one asset and commented examples of every kind, and the JSON
Schemas that give editors completion and validation through the
yaml-language-server line at the top of each file. Existing files are never
overwritten.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			if _, err := os.Stat(filepath.Join(dir, manifests.ConfigFile)); err == nil {
				return withCode(exitUsage, fmt.Errorf("%s already exists: this folder is a kiln project already", filepath.Join(dir, manifests.ConfigFile)))
			}
			files := manifests.Starter()
			names := make([]string, 0, len(files))
			for name := range files {
				names = append(names, name)
			}
			sort.Strings(names)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return withCode(exitFailed, fmt.Errorf("create project folder: %w", err))
			}
			for _, name := range names {
				// The folder named is trusted; nothing below it is
				// written through a symlink.
				path, err := safepath.JoinNoLinks(dir, name, "write "+name)
				if err != nil {
					return withCode(exitFailed, err)
				}
				if _, err := os.Lstat(path); err == nil {
					fmt.Fprintf(a.stderr, "kiln: keeping existing %s\n", path)
					continue
				} else if !errors.Is(err, fs.ErrNotExist) {
					return withCode(exitFailed, err)
				}
				if err := safepath.MkdirAll(dir, filepath.Dir(path), "write "+name); err != nil {
					return withCode(exitFailed, err)
				}
				if err := atomicfile.WriteFile(path, files[name], 0o644); err != nil {
					return withCode(exitFailed, err)
				}
				if !a.quiet {
					fmt.Fprintf(a.stdout, "wrote %s\n", path)
				}
			}
			if !a.quiet {
				fmt.Fprintf(a.stdout, "next: kiln build %s\n", dir)
			}
			return nil
		},
	}
}

func (a *app) schemaCommand() *cobra.Command {
	var config bool
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the manifest format (or of kiln.yaml)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := manifests.JSONSchema()
			if config {
				s = manifests.ConfigSchema()
			}
			_, err := a.stdout.Write(s)
			return err
		},
	}
	cmd.Flags().BoolVar(&config, "config", false, "print the schema of kiln.yaml instead")
	return cmd
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kiln's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(a.stdout, "kiln %s (%s, %s/%s; ONNX Runtime %s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, models.ORTVersion)
		},
	}
}

func (a *app) setupCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "setup",
		Short: "Install the ONNX Runtime CPU library into kiln's cache (needs npm)",
		Long: `Fetch Microsoft's CPU build of ONNX Runtime ` + models.ORTVersion + ` from the npm package
onnxruntime-node with "npm pack" (no install scripts run), verify the
package's integrity and the library's hash, and place the library in kiln's
cache folder, where kiln finds it. Running it again does nothing when the
library is already there and intact. For a GPU build, see the README.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := models.Setup(cmd.Context(), models.SetupOptions{Log: a.logger()})
			if err != nil {
				return withCode(exitFailed, err)
			}
			if !a.quiet {
				fmt.Fprintf(a.stdout, "ONNX Runtime %s: %s\n", models.ORTVersion, path)
			}
			return nil
		},
	}
}
