package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/hf"
	"github.com/kiln-dev/kiln/models/store"
)

// tokenEnv names kiln's older environment variable for a Hugging Face
// access token. HF_TOKEN (and HUGGING_FACE_HUB_TOKEN) come first, as
// huggingface_hub reads them; KILN_HF_TOKEN is used when neither is set,
// before the token file of `hf auth login`, and is also sent to
// huggingface.co for catalogue and URL pulls.
const tokenEnv = "KILN_HF_TOKEN"

// hubOptions configures the Hugging Face Hub client from the environment
// as huggingface_hub does (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE, ...),
// with KILN_HF_TOKEN as a fallback token. retries < 0 means the client's
// default.
func (a *app) hubOptions(retries int) hf.Options {
	o := hf.Options{LookupEnv: os.LookupEnv, UserAgent: "kiln/" + version, Log: a.logger(), Retries: hubRetries(retries)}
	set := func(k string) bool { v, ok := os.LookupEnv(k); return ok && strings.TrimSpace(v) != "" }
	if !set("HF_TOKEN") && !set("HUGGING_FACE_HUB_TOKEN") && set(tokenEnv) && !isTrueEnv("HF_HUB_DISABLE_IMPLICIT_TOKEN") {
		o.Token, o.TokenFrom = os.Getenv(tokenEnv), tokenEnv
	}
	return o
}

// hubRetries maps --retries (negative: the default, 0: none) to
// hf.Options.Retries (0: the default, negative: none).
func hubRetries(n int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return -1
	}
	return n
}

// isTrueEnv reads a boolean environment variable as huggingface_hub
// does: 1, ON, YES or TRUE in any case.
func isTrueEnv(k string) bool {
	switch strings.ToUpper(strings.TrimSpace(os.Getenv(k))) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// pullOptions are the PullOptions of every pull in the project at root:
// the catalogue, the Hub, the shared download cache, progress.
func (a *app) pullOptions(root string, cfg *manifests.Config, retries int) (store.PullOptions, error) {
	opts := store.PullOptions{ProjectRoot: root, Config: cfg, Hub: a.hubOptions(retries)}
	if retries >= 0 {
		opts.Retries = hubRetries(retries)
	}
	if path, ok := store.FindCatalog(root); ok {
		cat, err := store.LoadCatalog(path)
		if err != nil {
			return opts, withCode(exitUsage, err)
		}
		opts.Catalog = cat
	}
	if tok := os.Getenv(tokenEnv); tok != "" {
		opts.Authorize = store.BearerFor(tok, "huggingface.co")
	}
	opts.CacheDir, _ = models.CacheDir(nil) // none: no shared download cache
	opts.Terminal = isTerminal(a.stderr)
	opts.Log = a.logger()
	return opts, nil
}

// pullExit maps a pull's error to kiln's exit codes: a destination
// outside the project or a malformed reference is bad usage, anything
// else a failed pull.
func pullExit(err error) error {
	var outside *store.OutsideError
	if errors.As(err, &outside) {
		return withCode(exitUsage, err)
	}
	return withCode(exitFailed, err)
}

// pullBeforeBuild is kiln build --pull: every model of the project that
// is missing or does not match kiln.lock is fetched first, as kiln models
// pull does. A project that does not load is left to the build to report.
func (a *app) pullBeforeBuild(ctx context.Context, dir string) error {
	p, err := manifests.Load(dir)
	if err != nil {
		return nil
	}
	opts, err := a.pullOptions(p.Root, p.Config, -1)
	if err != nil {
		return err
	}
	if _, err := store.PullAll(ctx, a.stderr, opts); err != nil {
		if isInterrupt(err) {
			return err
		}
		return withCode(exitFailed, fmt.Errorf("kiln build --pull: %w", err))
	}
	return nil
}

// checkModelLocks is kiln build's check that the model folders the
// assets use hold what kiln.lock pins (sizes always, SHA-256 from the
// hash memory in kiln's cache folder that model fingerprints share, so a
// build that changes nothing reads no model file). m is the loaded
// project; nil loads it (when planning failed, a missing or damaged
// locked folder is the better explanation). It returns an exit-1 error
// naming model, file and what to do, or nil.
func (a *app) checkModelLocks(ctx context.Context, dir string, m *manifests.Project) error {
	if m == nil {
		var err error
		if m, err = manifests.Load(dir); err != nil {
			return nil
		}
	}
	var names []string
	for _, as := range m.Assets {
		if as.Model != "" {
			names = append(names, as.Model)
		}
	}
	cache, _ := models.CacheDir(nil)
	if err := store.CheckLocks(ctx, m.Root, m.Config, names, cache); err != nil {
		if isInterrupt(err) {
			return err
		}
		return withCode(exitFailed, err)
	}
	return nil
}

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
		Short: "Check every model file is present, matches kiln.lock (or its recorded hash), and loads",
		Long: `Check that every file of a model folder is present and matches the sizes and
hashes kiln.lock pins for it (else those recorded in its kiln-manifest.json,
or the catalogue), naming each file that differs, and that every ONNX graph
loads in ONNX Runtime. With --record, write kiln-manifest.json for a folder
you exported yourself, so later verifies can check it.`,
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
			if opts.Lock, err = store.ReadLock(p.Root); err != nil {
				return withCode(exitUsage, err)
			}
			if path, ok := store.FindCatalog(p.Root); ok {
				if opts.Catalog, err = store.LoadCatalog(path); err != nil {
					return withCode(exitUsage, err)
				}
			}
			lib, _, err := models.FindLibrary(models.LibraryOptions{Flag: a.ortLib, Config: p.Config.Runtime.Library, ConfigDir: p.Root, Device: p.Config.Runtime.Device})
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

	var (
		pullOpts store.PullOptions
		as       string
		retries  int
	)
	pull := &cobra.Command{
		Use:   "pull [NAME|URL|hf:ORG/REPO[/SUBFOLDER][@REVISION]]",
		Short: "Download model folders: from Hugging Face, pinned in kiln.lock, resumable, checksummed, atomic",
		Long: `Download a model folder. Without an argument, fetch every model kiln.yaml
names that is missing or does not match kiln.lock (built-in models have no
files; a folder of your own is left alone).

  kiln models pull hf:ORG/REPO[/SUBFOLDER][@REVISION] [--as NAME]
      Pull an ONNX diffusers / optimum export from the Hugging Face Hub
      into models/NAME (NAME defaults to the repository's name, lower-case).
      Only the files an ONNX model folder needs are downloaded. The commit
      and every file's size and SHA-256 go into kiln.lock beside kiln.yaml:
      commit it, and every machine pulls the same bytes.
  kiln models pull NAME
      Pull kiln.yaml's model NAME: from Hugging Face when its entry has
      hf: (exactly what kiln.lock pins, restoring damaged files), else
      from the project's models.catalog.yaml.
  kiln models pull --update [NAME]
      Move kiln.lock to the commit the revision points to now.
  kiln models pull URL
      A catalogue (.yaml/.json, choose the model with #NAME) or a folder
      URL serving kiln-manifest.json.

Every file is checked against its SHA-256; an interrupted pull resumes
where it stopped; the model folder appears only when every file is
verified. Downloads are kept in kiln's cache folder (blobs/sha256/) and
shared by every project: a file already there is linked, not downloaded.

The Hub is HF_ENDPOINT (default https://huggingface.co); the access token
for gated and private repositories is HF_TOKEN, else HUGGING_FACE_HUB_TOKEN,
else ` + tokenEnv + `, else the token file of "hf auth login". HF_HUB_OFFLINE=1
allows only what the download cache holds.

A catalogue lists models like this:

  version: 1
  models:
    - name: sd-turbo
      kind: turbo
      url: https://huggingface.co/ORG/REPO/resolve/main/
      files: [{path: unet/model.onnx, size: 1234, sha256: ...}]`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := filepath.Abs(dir)
			if err != nil {
				return withCode(exitUsage, err)
			}
			arg := dirArgName(args)
			switch {
			case as != "" && !hf.IsRef(arg):
				return withCode(exitUsage, errors.New("--as names a model pulled from Hugging Face: give an hf:ORG/REPO reference, or name the model in kiln.yaml"))
			case pullOpts.Update && arg != "" && (hf.IsRef(arg) || strings.Contains(arg, "://")):
				return withCode(exitUsage, errors.New("--update moves a kiln.lock entry: give the model's name (kiln models pull --update NAME), or no name for every model"))
			case arg == "" && (pullOpts.Dest != "" || pullOpts.Name != ""):
				return withCode(exitUsage, errors.New("--dest and --name need a model to pull"))
			}
			// hf: pulls are recorded in kiln.lock beside kiln.yaml and
			// checked against kiln.yaml's models, so they need the
			// project; a URL or catalogue pull can do without.
			var cfg *manifests.Config
			p, lerr := manifests.Load(root)
			switch {
			case lerr == nil:
				cfg = p.Config
			case arg == "":
				return withCode(exitUsage, lerr)
			case hf.IsRef(arg):
				return withCode(exitUsage, fmt.Errorf("kiln models pull %s records the model in %s beside kiln.yaml: %w", arg, store.LockName, lerr))
			}
			opts, err := a.pullOptions(root, cfg, retries)
			if err != nil {
				return err
			}
			opts.Replace, opts.Name, opts.Dest, opts.Update = pullOpts.Replace, pullOpts.Name, pullOpts.Dest, pullOpts.Update
			if arg == "" {
				if _, err := store.PullAll(cmd.Context(), a.stderr, opts); err != nil {
					return pullExit(err)
				}
				return nil
			}
			if hf.IsRef(arg) {
				ref, err := hf.ParseRef(arg)
				if err != nil {
					return withCode(exitUsage, err)
				}
				_, err = store.PullHF(cmd.Context(), a.stderr, ref, as, opts)
				return pullExit(err)
			}
			if opts.Update {
				if cfg == nil || cfg.Models[arg] == nil || cfg.Models[arg].HF == nil {
					if l, err := store.ReadLock(root); err != nil || l.Models[arg] == nil {
						return withCode(exitUsage, fmt.Errorf("--update: model %s is not pulled from Hugging Face (kiln.yaml gives it no hf: and %s has no entry for it)", arg, store.LockName))
					}
				}
			}
			_, err = store.Pull(cmd.Context(), a.stderr, arg, opts)
			return pullExit(err)
		},
	}
	pull.Flags().BoolVar(&pullOpts.Replace, "replace", false, "replace an existing folder (unchanged files are kept, not downloaded again)")
	pull.Flags().StringVar(&pullOpts.Name, "name", "", "the model to take from a catalogue URL")
	pull.Flags().StringVar(&pullOpts.Dest, "dest", "", "destination folder inside the project (default: kiln.yaml's path, else models/NAME)")
	pull.Flags().StringVar(&as, "as", "", "model name of an hf: pull (default: the repository's name, lower-case)")
	pull.Flags().BoolVar(&pullOpts.Update, "update", false, "move kiln.lock to the commit the revision points to now")
	pull.Flags().IntVar(&retries, "retries", -1, "times a failed request or transfer is tried again (default: 5 for the Hub, 3 otherwise; 0: none)")
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
