package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/pipeline"
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
	var config, report bool
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the manifest format (or of kiln.yaml, or of the build report)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if config && report {
				return withCode(exitUsage, errors.New("--config and --report cannot be combined; give one of them"))
			}
			s := manifests.JSONSchema()
			switch {
			case config:
				s = manifests.ConfigSchema()
			case report:
				s = pipeline.ReportSchema()
			}
			_, err := a.stdout.Write(s)
			return err
		},
	}
	cmd.Flags().BoolVar(&config, "config", false, "print the schema of kiln.yaml instead")
	cmd.Flags().BoolVar(&report, "report", false, "print the schema of kiln build --json's report instead")
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
	var device, mirror, sha string
	var noCheck bool
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Install ONNX Runtime into kiln's cache: the CPU build (needs npm), or the GPU build with --device cuda",
		Long: `Install ONNX Runtime ` + models.ORTVersion + ` into kiln's cache folder, where kiln finds it.

Without --device (or with --device cpu), fetch Microsoft's CPU build from the
npm package onnxruntime-node with "npm pack" (no install scripts run), verify
the package's integrity and the library's hash, and place the library in the
cache.

With --device cuda or --device tensorrt (Linux x64), download Microsoft's
official GPU build, onnxruntime-linux-x64-gpu-` + models.ORTVersion + `.tgz, which carries
both providers, from
  ` + models.DefaultORTReleases + `/v` + models.ORTVersion + `/
or from a mirror with the same layout (--mirror or $` + models.MirrorEnv + `):
  <mirror>/v` + models.ORTVersion + `/onnxruntime-linux-x64-gpu-` + models.ORTVersion + `.tgz
  <mirror>/v` + models.ORTVersion + `/onnxruntime-linux-x64-gpu-` + models.ORTVersion + `.tgz.sha256  (optional)
and install its libraries into ` + filepath.Join("<cache>", "onnxruntime", models.ORTVersion+"-gpu") + `. kiln pins no
digest for this archive yet, so it installs it only when its sha256 matches
--sha256 or the mirror's .sha256 file; otherwise it downloads the archive,
prints its sha256 for you to confirm, and keeps it for the next run.

Before and after installing, setup checks what the provider needs: the NVIDIA
driver, CUDA 12.x, cuDNN 9.x (and TensorRT 10 for tensorrt), as the dynamic
loader finds them, and says what is missing and which package provides it.
Missing prerequisites fail the command (exit 1) but keep the install;
--no-check accepts them (for example when building a container image).

On macOS, CoreML is part of the standard build: there is nothing to fetch.
Running setup again does nothing when the install is intact.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			device = strings.ToLower(strings.TrimSpace(device))
			switch device {
			case "", models.ProviderCPU:
				if mirror != "" || sha != "" || noCheck {
					return withCode(exitUsage, errors.New("--mirror, --sha256 and --no-check apply to --device cuda and --device tensorrt; the CPU build comes from npm and is pinned"))
				}
				path, err := models.Setup(cmd.Context(), models.SetupOptions{Log: a.logger()})
				if err != nil {
					return withCode(exitFailed, err)
				}
				if !a.quiet {
					fmt.Fprintf(a.stdout, "ONNX Runtime %s: %s\n", models.ORTVersion, path)
				}
				return nil
			case models.ProviderCUDA, models.ProviderTensorRT:
				return a.setupGPU(cmd.Context(), device, mirror, sha, noCheck)
			case models.ProviderCoreML:
				if runtime.GOOS != "darwin" {
					return withCode(exitUsage, fmt.Errorf("CoreML runs only on macOS; on %s use --device cuda or tensorrt (NVIDIA GPUs, Linux x64), or directml on Windows", runtime.GOOS))
				}
				fmt.Fprintf(a.stdout, "CoreML is part of Microsoft's standard macOS build of ONNX Runtime: there is nothing more to fetch. Unpack onnxruntime-osx-arm64-%s.tgz from %s/v%s/, set KILN_ORT_LIB to its lib/libonnxruntime.dylib, and set runtime.device: coreml in kiln.yaml.\n", models.ORTVersion, models.DefaultORTReleases, models.ORTVersion)
				return nil
			case models.ProviderDirectML:
				if runtime.GOOS != "windows" {
					return withCode(exitUsage, fmt.Errorf("DirectML runs only on Windows; on %s use --device cuda or tensorrt (NVIDIA GPUs, Linux x64)", runtime.GOOS))
				}
				return withCode(exitFailed, fmt.Errorf("kiln setup does not download the DirectML build yet: take runtimes\\win-x64\\native\\onnxruntime.dll from the Microsoft.ML.OnnxRuntime.DirectML %s NuGet package and bin\\x64-win\\DirectML.dll from the Microsoft.AI.DirectML package it depends on, put both in one folder (onnxruntime.dll loads DirectML.dll from its own folder; the older DirectML.dll in System32 does not work), set KILN_ORT_LIB to that onnxruntime.dll, and set runtime.device: directml in kiln.yaml", models.ORTVersion))
			case models.ProviderOpenVINO:
				return withCode(exitUsage, errors.New("kiln setup does not fetch OpenVINO builds: install Intel's ONNX Runtime build with the OpenVINO provider (onnxruntime-openvino) and set KILN_ORT_LIB to its libonnxruntime.so.1"))
			}
			return withCode(exitUsage, fmt.Errorf("unknown --device %q: use cpu, cuda, tensorrt, coreml or directml", device))
		},
	}
	cmd.Flags().StringVar(&device, "device", "", "the build to install: cpu (default), cuda or tensorrt (the GPU build), coreml, directml")
	cmd.Flags().StringVar(&mirror, "mirror", "", "base URL of a mirror of the ONNX Runtime release downloads (default $"+models.MirrorEnv+", else "+models.DefaultORTReleases+")")
	cmd.Flags().StringVar(&sha, "sha256", "", "the GPU archive's sha256, confirmed from a source you trust")
	cmd.Flags().BoolVar(&noCheck, "no-check", false, "install the GPU build even when the driver, CUDA or cuDNN are missing")
	return cmd
}

// setupGPU runs models.SetupGPU and reports what it did and found.
func (a *app) setupGPU(ctx context.Context, device, mirror, sha string, noCheck bool) error {
	opts := models.SetupGPUOptions{Device: device, Mirror: mirror, SHA256: sha, SkipChecks: noCheck, Log: a.logger()}
	if !a.quiet {
		opts.Progress = downloadProgress(a.stderr, isTerminal(a.stderr))
	}
	res, err := models.SetupGPU(ctx, opts)
	if res != nil && !a.quiet {
		fmt.Fprintf(a.stdout, "ONNX Runtime %s GPU build (cuda and tensorrt providers): %s\n", models.ORTVersion, res.Library)
		fmt.Fprintf(a.stdout, "  archive sha256 %s (checked against %s)\n", res.SHA256, res.DigestFrom)
		if res.Prereqs != nil {
			for _, line := range prereqSummary(res.Prereqs) {
				fmt.Fprintf(a.stdout, "  %s\n", line)
			}
		}
		if err == nil {
			fmt.Fprintf(a.stdout, "use it: kiln build --device %s, or put runtime: {device: %s} in kiln.yaml (kiln finds this build in its cache)\n", device, device)
		}
	}
	var bad *models.SetupOptionError
	if errors.As(err, &bad) {
		return withCode(exitUsage, err)
	}
	if err != nil {
		return withCode(exitFailed, err)
	}
	return nil
}

// prereqSummary describes the driver and libraries found, one line each.
func prereqSummary(r *models.PrereqReport) []string {
	if !r.Checked {
		return []string{r.Note}
	}
	var out []string
	d := r.Driver
	switch {
	case d.Found:
		out = append(out, fmt.Sprintf("NVIDIA driver %s (%s)", orDash(d.Version), d.LibCUDA))
	default:
		out = append(out, "NVIDIA driver: missing")
	}
	for _, l := range r.Libraries {
		if l.Problem != "" {
			out = append(out, fmt.Sprintf("%-18s missing (wants %s)", l.Name, l.Want))
			continue
		}
		out = append(out, fmt.Sprintf("%-18s %s (%s)", l.Name, l.Version, l.Path))
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// downloadProgress shows the download: a line rewritten in place on a
// terminal, a line per quarter otherwise.
func downloadProgress(w io.Writer, terminal bool) func(done, total int64) {
	last := -1
	return func(done, total int64) {
		if total <= 0 {
			return
		}
		pct := int(done * 100 / total)
		step := pct
		if !terminal {
			step = pct / 25 * 25
		}
		if step == last {
			return
		}
		last = step
		if terminal {
			fmt.Fprintf(w, "\rdownloading ONNX Runtime GPU build: %3d%% (%d/%d MB)", pct, done>>20, total>>20)
			if done >= total {
				fmt.Fprintln(w)
			}
			return
		}
		fmt.Fprintf(w, "downloading ONNX Runtime GPU build: %d%% of %d MB\n", step, total>>20)
	}
}
