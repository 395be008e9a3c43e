package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"

	"github.com/kiln-dev/kiln/cmd/kiln/internal/project"
	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
	"github.com/kiln-dev/kiln/watch"
	"github.com/kiln-dev/kiln/watch/bridge"
	"github.com/kiln-dev/kiln/watch/preview"
)

func (a *app) watchCommand() *cobra.Command {
	var serve string
	var allowRemote bool
	var keepGoing bool
	cmd := &cobra.Command{
		Use:   "watch [DIR]",
		Short: "Rebuild on every save; optionally serve a live preview page",
		Long: `Watch the project in DIR and rebuild what changed after every save (editors
that save by rename included). Broken input prints its error and keeps the
last good outputs; the fix resumes building. Models stay loaded between
rebuilds.

With --serve 127.0.0.1:PORT, a preview page shows every asset with its
current images, atlases, materials in 3D and per-stage status, updated live.
The page is served on loopback only unless --allow-remote is given.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.watch(cmd.Context(), dirArg(args), serve, allowRemote, keepGoing)
		},
	}
	cmd.Flags().StringVar(&serve, "serve", "", "serve the preview page at this address (e.g. 127.0.0.1:8080)")
	cmd.Flags().BoolVar(&allowRemote, "allow-remote", false, "allow --serve on a non-loopback address (the page exposes your project's outputs)")
	cmd.Flags().BoolVarP(&keepGoing, "keep-going", "k", true, "keep building other assets past a failure")
	return cmd
}

func (a *app) watch(ctx context.Context, dir, serve string, allowRemote, keepGoing bool) error {
	root, err := filepath.Abs(dir)
	if err != nil {
		return withCode(exitUsage, err)
	}
	// The first load must succeed to know the output and cache folders.
	first, err := manifests.Load(root)
	if err != nil {
		return withCode(exitUsage, err)
	}
	cfg := first.Config
	log := a.logger()
	ro := project.RuntimeOverrides{Library: a.ortLib, DeviceID: -1}
	var models generators.ModelSet
	defer func() {
		if models != nil {
			models.Close()
		}
	}()

	var srv *preview.Server
	if serve != "" {
		srv, err = preview.New(preview.Options{OutDir: filepath.Join(root, cfg.Output), Addr: serve, AllowRemote: allowRemote, Log: log})
		if err != nil {
			return withCode(exitUsage, err)
		}
		if err := srv.Start(); err != nil {
			return withCode(exitFailed, err)
		}
		defer srv.Close()
		fmt.Fprintf(a.stderr, "preview: %s\n", srv.URL())
	}

	// A save during a build supersedes it: diffusion stages still running
	// go on, and the next build takes them over when they are unchanged.
	// The session is closed before the models (defers run last first).
	sess := pipeline.NewSession(pipeline.SessionOptions{
		Detach: func(cause error) bool { return errors.Is(cause, watch.ErrSuperseded) },
	})
	defer sess.Close()

	var mu sync.Mutex
	var proj *manifests.Project
	var rep *pipeline.Report
	var state preview.State
	var lastWarnings string // printed again only when they change
	build := func(ctx context.Context, req watch.Request) watch.Result {
		p, err := project.Open(root, project.Options{Log: log, Runtime: ro, Models: models, Version: version, KeepGoing: keepGoing})
		if err != nil {
			mu.Lock()
			proj, rep = nil, nil
			mu.Unlock()
			return bridge.Result(nil, err)
		}
		if models == nil {
			models = p.Models
		}
		if w := p.Manifests.Warnings.Error(); w != lastWarnings {
			lastWarnings = w
			a.printWarnings(p.Manifests.Warnings)
		}
		opts := p.BuildOptions()
		opts.KeepGoing = keepGoing
		opts.Session = sess
		r, err := pipeline.Build(ctx, p.Stages, opts)
		mu.Lock()
		proj, rep = p.Manifests, r
		mu.Unlock()
		return bridge.Result(r, err)
	}
	err = watch.Run(ctx, watch.Options{
		Root:     root,
		Ignore:   []string{cfg.Output, cfg.Cache},
		Debounce: cfg.Watch.Debounce,
		Build:    build,
		Out:      a.stderr,
		Log:      log,
		OnStart: func(r watch.Request) {
			if srv != nil {
				srv.Building(r.Changed)
			}
		},
		OnDone: func(_ watch.Request, r watch.Result) {
			if srv == nil {
				return
			}
			mu.Lock()
			state = bridge.State(proj, rep, r, state)
			st := state
			mu.Unlock()
			srv.Publish(st)
		},
	})
	if err != nil {
		return withCode(exitFailed, err)
	}
	return nil
}
