package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-dev/kiln/internal/project"
	"github.com/kiln-dev/kiln/internal/spelling"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/pipeline"
	"github.com/kiln-dev/kiln/pipeline/remote"
)

// buildFlags are kiln build's flags.
type buildFlags struct {
	only      []string
	dryRun    bool
	explain   bool
	jobs      int
	keepGoing bool
	json      bool
	check     bool
	device    string
	deviceID  int
	// deviceIDSet is whether --device-id was given.
	deviceIDSet bool
	// pull fetches missing models (and those not matching kiln.lock)
	// before building.
	pull bool
	// remoteCache is --remote-cache: a URL, "off", or "" when not given.
	remoteCache string
	// shard is --shard I/N, "" when not given.
	shard string
}

func (a *app) buildCommand() *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build the project's assets (only what changed runs again)",
		Long: `Build every asset of the project in DIR (default: the current folder), or
only the assets named by --only and what they depend on. Stages whose inputs
did not change are taken from the cache.

  --dry-run / --explain   say what would run (or ran) and why
  --check                 exit 1 when any output is missing or stale, without
                          generating anything (for CI "assets up to date" gates)
  --json                  print a machine-readable report on stdout
  --remote-cache URL|off  share results with other machines (Bazel HTTP cache
                          protocol); default: KILN_REMOTE_CACHE, else
                          kiln.yaml's remote_cache
  --shard I/N             build shard I of N of the diffusion work and push it
                          to the remote cache; a plain build then assembles
  --pull                  first fetch every model that is missing or does not
                          match kiln.lock, as kiln models pull does

A model folder that does not hold what kiln.lock pins for it stops the build
(exit 1) before anything runs.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.deviceIDSet = cmd.Flags().Changed("device-id")
			return a.build(cmd, dirArg(args), f)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.only, "only", nil, "build only these asset ids, or the ids a pattern such as \"ui/*\" matches (and what they depend on); repeatable")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "show what would run and why, running nothing")
	fl.BoolVar(&f.explain, "explain", false, "say why each stage runs (which part of its key changed)")
	fl.IntVarP(&f.jobs, "jobs", "j", 0, "CPU stages to run at once (default: number of cores)")
	fl.BoolVarP(&f.keepGoing, "keep-going", "k", false, "continue past failures and report every one")
	fl.BoolVar(&f.json, "json", false, "print a JSON report on stdout")
	fl.BoolVar(&f.check, "check", false, "exit 1 if any output is missing or stale; generate nothing")
	fl.StringVar(&f.device, "device", "", "execution provider: cpu, cuda, tensorrt, coreml, directml or openvino (default: kiln.yaml's runtime.device)")
	fl.IntVar(&f.deviceID, "device-id", -1, "device index for --device (default: kiln.yaml's runtime.device_id)")
	fl.StringVar(&f.remoteCache, "remote-cache", "", "remote cache URL (Bazel HTTP cache protocol), or off (default: KILN_REMOTE_CACHE, else kiln.yaml's remote_cache)")
	fl.StringVar(&f.shard, "shard", "", "build shard I of N of the diffusion work (e.g. 2/4) and push it to the remote cache")
	fl.BoolVar(&f.pull, "pull", false, "fetch models that are missing or do not match kiln.lock first")
	return cmd
}

// validate checks the flags the way kiln.yaml's values are checked, before
// anything is loaded or run, so a bad value is a usage error (exit 2) even
// when every stage is cached and the value would never be used.
func (f buildFlags) validate() error {
	if f.jobs < 0 {
		return fmt.Errorf("--jobs %d: give a positive number of jobs, or 0 for one per core", f.jobs)
	}
	if err := remote.CheckFlag(f.remoteCache); err != nil {
		return err
	}
	if _, err := pipeline.ParseShard(f.shard); f.shard != "" && err != nil {
		return fmt.Errorf("--%w", err)
	}
	return validateDevice(f.device, f.deviceID, f.deviceIDSet)
}

// validateDevice checks --device and --device-id.
func validateDevice(device string, id int, idSet bool) error {
	if device != "" && !slices.Contains(models.Providers, device) {
		hint := ""
		if s := spelling.Suggest(device, models.Providers); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		return fmt.Errorf("--device %q is not an execution provider kiln knows%s; use one of %s", device, hint, strings.Join(models.Providers, ", "))
	}
	if idSet && id < 0 {
		return fmt.Errorf("--device-id %d: give a device index of 0 or more (0 is the first GPU)", id)
	}
	return nil
}

// dirArg returns the project folder argument, "." when absent.
func dirArg(args []string) string {
	if len(args) == 0 {
		return "."
	}
	return args[0]
}

// openProject loads and plans the project, turning manifest and graph
// errors into exit code 2.
func (a *app) openProject(dir string, ro project.RuntimeOverrides, keepGoing bool) (*project.Project, error) {
	p, err := project.Open(dir, project.Options{Log: a.logger(), Runtime: ro, Version: version, KeepGoing: keepGoing})
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	a.printWarnings(p.Manifests.Warnings)
	return p, nil
}

// printWarnings shows the problems that did not stop the load (manifests
// kiln skipped), one line each, even with --quiet: input that silently
// drops out of a build is worth a line.
func (a *app) printWarnings(ws manifests.ErrorList) {
	for _, w := range ws {
		fmt.Fprintln(a.stderr, "kiln: warning:", w.Error())
	}
}

func (a *app) build(cmd *cobra.Command, dir string, f buildFlags) error {
	if f.dryRun && f.check {
		return withCode(exitUsage, errors.New("--dry-run and --check cannot be combined; use one of them"))
	}
	if err := f.validate(); err != nil {
		return withCode(exitUsage, err)
	}
	if f.pull {
		if err := a.pullBeforeBuild(cmd.Context(), dir); err != nil {
			return exitOf(err)
		}
	}
	p, err := a.openProject(dir, project.RuntimeOverrides{Library: a.ortLib, Device: f.device, DeviceID: f.deviceID}, f.keepGoing && !f.dryRun && !f.check)
	if err == nil {
		// Model folders must hold what kiln.lock pins before anything runs.
		if lerr := a.checkModelLocks(cmd.Context(), dir, p.Manifests); lerr != nil {
			p.Close()
			err = lerr
		}
	} else if lerr := a.checkModelLocks(cmd.Context(), dir, nil); lerr != nil {
		err = lerr // a missing or damaged locked folder explains the failure best
	}
	if err != nil {
		if f.json {
			a.writeJSON(jsonErrorReport("build", err))
		}
		return exitOf(err)
	}
	defer p.Close()

	opts := p.BuildOptions()
	opts.Only = f.only
	opts.DryRun = f.dryRun
	opts.Check = f.check
	opts.Explain = f.explain || f.dryRun
	opts.KeepGoing = f.keepGoing
	opts.Jobs = f.jobs
	closeRemote, err := a.remoteOptions(&opts, f, p)
	if err != nil {
		if f.json {
			a.writeJSON(jsonErrorReport("build", err))
		}
		return withCode(exitUsage, err)
	}
	defer closeRemote()
	if !f.json && !a.quiet {
		opts.Progress = newProgress(a.stderr, isTerminal(a.stderr))
	}

	report, err := pipeline.Build(cmd.Context(), p.Stages, opts)
	if report != nil && report.Remote != nil && report.Remote.Warning != "" {
		fmt.Fprintln(a.stderr, "kiln: warning:", report.Remote.Warning)
	}
	if f.json && report != nil {
		a.writeJSON(report)
	} else if f.json {
		a.writeJSON(jsonErrorReport("build", err))
	}
	if n := len(p.Manifests.Warnings); f.check && n > 0 && (err == nil || errors.Is(err, pipeline.ErrStale)) {
		// A gate must not pass over input kiln skipped.
		return withCode(exitUsage, fmt.Errorf("%d manifest warnings (see above); --check treats them as errors", n))
	}
	return buildExit(err)
}

// buildExit maps a pipeline.Build error to kiln's exit codes. The details
// were already shown by the progress display or the JSON report, so only
// a one-line summary is returned.
func buildExit(err error) error {
	var ge *pipeline.GraphError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pipeline.ErrStale):
		return withCode(exitFailed, err)
	case errors.As(err, &ge):
		return withCode(exitUsage, err)
	case errors.Is(err, pipeline.ErrLocked):
		return withCode(exitFailed, err)
	case errors.Is(err, pipeline.ErrFailed):
		return withCode(exitFailed, err)
	case isInterrupt(err):
		return withCode(exitInterrupted, errors.New("interrupted; finished stages are cached, run kiln build again to continue"))
	}
	return withCode(exitFailed, err)
}

// exitOf keeps the exit code err already carries, else maps it as
// buildExit does (an interrupt is 130).
func exitOf(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return buildExit(err)
}

// jsonErrorReport is the --json output when no build report exists
// (invalid manifests, an invalid graph): the errors, each with its
// manifest position.
func jsonErrorReport(mode string, err error) any {
	type jsonError struct {
		Message string `json:"message"`
		Where   string `json:"where,omitempty"`
	}
	var errs []jsonError
	for _, e := range project.Errors(err) {
		errs = append(errs, jsonError{Message: e.Message, Where: e.Where})
	}
	return map[string]any{"mode": mode, "errors": errs}
}

func (a *app) writeJSON(v any) {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(a.stderr, "kiln: write JSON report:", err)
	}
}

// isTerminal reports whether w is a terminal, for the live progress
// display; logs and CI get plain lines.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
}

func (a *app) validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check the project's manifests and graph without building",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.openProject(dirArg(args), project.RuntimeOverrides{Library: a.ortLib, DeviceID: -1}, false)
			if err != nil {
				return err
			}
			defer p.Close()
			// Cycles and output collisions show only in the stage graph.
			if _, err := pipeline.Graph(p.Stages); err != nil {
				return withCode(exitUsage, err)
			}
			if !a.quiet {
				fmt.Fprintf(a.stdout, "ok: %d manifests, %d assets, %d atlases, %d materials, %d stages\n",
					len(p.Manifests.Files), len(p.Manifests.Assets), len(p.Manifests.Atlases), len(p.Manifests.Materials), len(p.Stages))
			}
			return nil
		},
	}
}

func (a *app) graphCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph [DIR]",
		Short: "Print the stage graph as Graphviz dot, Mermaid or JSON",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			write := map[string]func(*pipeline.DAG) error{
				"dot":     func(d *pipeline.DAG) error { return d.WriteDot(a.stdout) },
				"mermaid": func(d *pipeline.DAG) error { return d.WriteMermaid(a.stdout) },
				"json":    func(d *pipeline.DAG) error { return d.WriteJSON(a.stdout) },
			}[format]
			if write == nil {
				return withCode(exitUsage, fmt.Errorf("--format %q: use dot, mermaid or json", format))
			}
			p, err := a.openProject(dirArg(args), project.RuntimeOverrides{Library: a.ortLib, DeviceID: -1}, false)
			if err != nil {
				return err
			}
			defer p.Close()
			dag, err := pipeline.Graph(p.Stages)
			if err != nil {
				return withCode(exitUsage, err)
			}
			return write(dag)
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "dot, mermaid or json")
	return cmd
}

func (a *app) cleanCommand() *cobra.Command {
	var cache bool
	cmd := &cobra.Command{
		Use:   "clean [DIR]",
		Short: "Remove the outputs kiln wrote (and, with --cache, its cache)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.openProject(dirArg(args), project.RuntimeOverrides{Library: a.ortLib, DeviceID: -1}, false)
			if err != nil {
				return err
			}
			defer p.Close()
			res, err := pipeline.Clean(p.BuildOptions(), cache)
			if err != nil {
				return withCode(exitFailed, err)
			}
			if !a.quiet {
				fmt.Fprintf(a.stdout, "removed %d outputs", len(res.Removed))
				if res.CacheRemoved {
					fmt.Fprint(a.stdout, " and the cache")
				}
				fmt.Fprintln(a.stdout)
				for _, k := range res.Kept {
					fmt.Fprintf(a.stdout, "kept %s: modified since kiln wrote it; delete it by hand if you no longer need it\n", k)
				}
				for _, k := range res.CacheKept {
					fmt.Fprintf(a.stdout, "kept %s in the cache folder: kiln did not make it; delete it by hand if you no longer need it\n", k)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&cache, "cache", false, "also remove the cache (everything rebuilds next time)")
	return cmd
}

// isInterrupt reports whether err comes from cancelling the build (Ctrl-C
// or SIGTERM).
func isInterrupt(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// remoteOptions sets up the remote cache of a build: --remote-cache,
// else KILN_REMOTE_CACHE, else kiln.yaml's remote_cache (see
// remote.Choose). --shard needs one, and always uploads: pushing is what
// a shard is for. Dry-run and check modes do not use it. The returned
// function releases the client.
func (a *app) remoteOptions(opts *pipeline.Options, f buildFlags, p *project.Project) (func(), error) {
	var checkout *remote.Settings
	if rc := p.Manifests.Config.RemoteCache; rc != nil {
		checkout = &remote.Settings{URL: rc.URL, Upload: rc.Upload, CAFile: rc.CAPath(p.Root), Timeout: rc.Timeout,
			Where: rc.URLPos.String(), CAWhere: rc.CAFilePos.String()}
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("remote cache: %w", err)
	}
	s, err := remote.Choose(f.remoteCache, os.Getenv, checkout, wd)
	if err != nil {
		return nil, err
	}
	if f.shard != "" {
		sh, _ := pipeline.ParseShard(f.shard)
		if s == nil {
			return nil, fmt.Errorf("--shard %s needs a remote cache to push its work to: give --remote-cache URL, set %s, or add remote_cache: to kiln.yaml", sh, remote.EnvURL)
		}
		s.Upload = true
		opts.Shard = sh
	}
	if s == nil || opts.DryRun || opts.Check {
		return func() {}, nil
	}
	c, warnings, err := remote.New(*s, remote.Credentials{Getenv: os.Getenv})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintln(a.stderr, "kiln: warning:", w)
	}
	opts.Remote, opts.RemoteUpload = c, s.Upload
	return c.Close, nil
}
