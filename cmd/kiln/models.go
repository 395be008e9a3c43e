package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/store"
)

// tokenEnv names the environment variable holding a bearer token for
// model downloads (Hugging Face access tokens, for gated repositories).
const tokenEnv = "KILN_HF_TOKEN"

func (a *app) modelsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, verify and download models",
	}
	var dir string
	cmd.PersistentFlags().StringVarP(&dir, "project", "C", ".", "project folder")

	load := func() (*manifests.Project, error) {
		p, err := manifests.Load(dir)
		if err != nil {
			return nil, withCode(exitUsage, err)
		}
		return p, nil
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List configured models: kind, size, fingerprint, where they live",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := load()
			if err != nil {
				return err
			}
			ms, err := store.LocalModels(p.Root, p.Config)
			if err != nil {
				return withCode(exitFailed, err)
			}
			cache, _ := models.CacheDir(nil)
			return withCode(exitFailed, store.List(a.stdout, ms, cache))
		},
	}

	var record bool
	verify := &cobra.Command{
		Use:   "verify [NAME]",
		Short: "Check every model file is present, matches its recorded hash, and loads",
		Long: `Check that every file of a model folder is present and matches the sizes and
hashes recorded in its kiln-manifest.json (or the catalogue), and that every
ONNX graph loads in ONNX Runtime. With --record, write kiln-manifest.json for
a folder you exported yourself, so later verifies can check it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := load()
			if err != nil {
				return err
			}
			ms, err := store.LocalModels(p.Root, p.Config)
			if err != nil {
				return withCode(exitFailed, err)
			}
			ms, err = store.Select(ms, dirArgName(args))
			if err != nil {
				return withCode(exitUsage, err)
			}
			if record {
				for _, m := range ms {
					if m.Builtin != "" {
						continue
					}
					if _, err := store.Record(cmd.Context(), m.Dir, m.Name, m.Kind); err != nil {
						return withCode(exitFailed, err)
					}
					fmt.Fprintf(a.stdout, "recorded %s\n", filepath.Join(m.Dir, store.ManifestName))
				}
			}
			opts := store.VerifyOptions{}
			if path, ok := store.FindCatalog(p.Root); ok {
				if opts.Catalog, err = store.LoadCatalog(path); err != nil {
					return withCode(exitUsage, err)
				}
			}
			lib, _, err := models.FindLibrary(models.LibraryOptions{Flag: a.ortLib, Config: p.Config.Runtime.Library, ConfigDir: p.Root})
			if err == nil {
				rt, rerr := models.NewRuntime(models.RuntimeOptions{Library: lib, Log: a.logger()})
				if rerr == nil {
					defer rt.Close()
					opts.Runtime = rt
				}
			}
			if _, err := store.Verify(cmd.Context(), a.stdout, ms, opts); err != nil {
				return withCode(exitFailed, err)
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&record, "record", false, "write kiln-manifest.json (sizes and hashes) for the selected folders first")

	var pullOpts store.PullOptions
	pull := &cobra.Command{
		Use:   "pull NAME|URL",
		Short: "Download a model folder: resumable, checksummed, atomic",
		Long: `Download a model folder named in the project's models.catalog.yaml, or from
a URL: a catalogue (.yaml/.json, choose the model with #NAME) or a folder
URL serving kiln-manifest.json. Every file is checked against its sha256;
an interrupted pull resumes where it stopped; the model folder appears only
when every file is verified. Set ` + tokenEnv + ` to send a Hugging Face
access token to huggingface.co.

A catalogue lists models like this:

  version: 1
  models:
    - name: sd-turbo
      kind: turbo
      url: https://huggingface.co/ORG/REPO/resolve/main/
      files: [{path: unet/model.onnx, size: 1234, sha256: ...}]`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := filepath.Abs(dir)
			if err != nil {
				return withCode(exitUsage, err)
			}
			opts := pullOpts
			opts.ProjectRoot = root
			if p, err := manifests.Load(root); err == nil {
				opts.Config = p.Config
			}
			if path, ok := store.FindCatalog(root); ok {
				if opts.Catalog, err = store.LoadCatalog(path); err != nil {
					return withCode(exitUsage, err)
				}
			}
			if tok := os.Getenv(tokenEnv); tok != "" {
				opts.Authorize = store.BearerFor(tok, "huggingface.co")
			}
			opts.Terminal = isTerminal(a.stderr)
			opts.Log = a.logger()
			if _, err := store.Pull(cmd.Context(), a.stderr, args[0], opts); err != nil {
				var outside *store.OutsideError
				if errors.As(err, &outside) {
					return withCode(exitUsage, err) // --dest outside the project
				}
				return withCode(exitFailed, err)
			}
			return nil
		},
	}
	pull.Flags().BoolVar(&pullOpts.Replace, "replace", false, "replace an existing folder (unchanged files are kept, not downloaded again)")
	pull.Flags().StringVar(&pullOpts.Name, "name", "", "the model to take from a catalogue URL")
	pull.Flags().StringVar(&pullOpts.Dest, "dest", "", "destination folder inside the project (default: models/NAME)")
	cmd.AddCommand(list, verify, pull)
	return cmd
}

// dirArgName returns the optional NAME argument.
func dirArgName(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
