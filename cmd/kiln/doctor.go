package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/store"
	"github.com/kiln-dev/kiln/watch"
)

func (a *app) doctorCommand() *cobra.Command {
	var asJSON, deep bool
	cmd := &cobra.Command{
		Use:   "doctor [DIR]",
		Short: "Report kiln's setup in one screen for bug reports: ONNX Runtime, providers, GPU, memory, models",
		Long: `Report, in one screen to paste into a bug report: kiln's and Go's versions;
the ONNX Runtime library kiln uses, where it was found and its version; the
execution providers the library carries and which of them start; the NVIDIA
GPUs, driver, CUDA and cuDNN this machine has; memory and the cgroup limit;
each configured model's state (present, verified against its recorded sizes
and hashes, locked in kiln.lock); and the inotify limits kiln watch needs.

Checking models hashes their files but loads no graph; --deep loads every
graph in ONNX Runtime too. Nothing missing makes doctor fail: it says what is
missing and what that means. It exits 0, or 2 when the project in DIR cannot
be read (after printing everything else).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, explicit := ".", len(args) == 1
			if explicit {
				dir = args[0]
			}
			rep, projErr := a.doctor(cmd.Context(), dir, explicit, deep, realDoctorProbes())
			var err error
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			} else {
				err = writeDoctor(a.stdout, rep)
			}
			if err != nil {
				return withCode(exitFailed, err)
			}
			if projErr != nil {
				return withCode(exitUsage, projErr)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&deep, "deep", false, "also load every model graph in ONNX Runtime")
	return cmd
}

// doctorProbes are the doctor's views of the machine. realDoctorProbes
// looks at this one; tests replace each.
type doctorProbes struct {
	goos, goarch, goVersion string
	getenv                  models.Getenv
	cacheDir                func() (string, error)
	findLibrary             func(models.LibraryOptions) (string, string, error)
	loadRuntime             func(lib string) (string, error)
	startProvider           func(lib, provider string) error
	providerLibraries       func(lib string) []models.ProviderLibrary
	machine                 models.ProbeOptions
	prereq                  models.PrereqOptions
	// verify checks one model; runtime is nil unless --deep.
	verify func(ctx context.Context, m store.LocalModel, opts store.VerifyOptions) store.VerifyResult
	// deepRuntime opens the runtime --deep loads graphs with.
	deepRuntime func(lib string) (*models.Runtime, error)
}

func realDoctorProbes() doctorProbes {
	return doctorProbes{
		goos:              runtime.GOOS,
		goarch:            runtime.GOARCH,
		goVersion:         runtime.Version(),
		cacheDir:          func() (string, error) { return models.CacheDir(nil) },
		findLibrary:       models.FindLibrary,
		loadRuntime:       models.ProbeRuntime,
		startProvider:     models.ProbeProvider,
		providerLibraries: func(lib string) []models.ProviderLibrary { return models.ProviderLibraries(lib, "") },
		verify:            store.VerifyModel,
		deepRuntime: func(lib string) (*models.Runtime, error) {
			return models.NewRuntime(models.RuntimeOptions{Library: lib})
		},
	}
}

// doctorReport is what kiln doctor prints; its JSON form is --json's.
type doctorReport struct {
	Kiln      doctorKiln          `json:"kiln"`
	Runtime   doctorRuntime       `json:"onnxruntime"`
	Providers []doctorProvider    `json:"providers"`
	GPU       doctorGPU           `json:"gpu"`
	Memory    models.MemoryReport `json:"memory"`
	Project   doctorProject       `json:"project"`
	Models    []doctorModel       `json:"models"`
	Inotify   doctorInotify       `json:"inotify"`
}

type doctorKiln struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

type doctorRuntime struct {
	// Library is the file FindLibrary chose and Source where it found it.
	Library string `json:"library,omitempty"`
	Source  string `json:"source,omitempty"`
	// Version is what the loaded library reports; Expected is the release
	// kiln is built and tested against.
	Version  string `json:"version,omitempty"`
	Expected string `json:"expected"`
	// Device and Fallback are kiln.yaml's runtime.device and fallback.
	Device   string `json:"device"`
	Fallback string `json:"fallback,omitempty"`
	// Error says why no library was found or loaded.
	Error string `json:"error,omitempty"`
	// GPUBuild is where kiln setup --device cuda installs the GPU build.
	GPUBuild doctorGPUBuild `json:"gpu_build"`
}

type doctorGPUBuild struct {
	Path      string `json:"path"`
	Installed bool   `json:"installed"`
	InUse     bool   `json:"in_use"`
}

type doctorProvider struct {
	Name       string `json:"name"`
	CompiledIn bool   `json:"compiled_in"`
	How        string `json:"how"`
	// Checked is false when no library was loaded to try it.
	Checked bool   `json:"checked"`
	Starts  bool   `json:"starts"`
	Error   string `json:"error,omitempty"`
}

type doctorGPU struct {
	// Summary is one line: the GPUs, or "none found" and what it means.
	Summary   string                 `json:"summary"`
	Devices   []models.GPUDevice     `json:"devices"`
	Source    string                 `json:"source,omitempty"`
	Problem   string                 `json:"problem,omitempty"`
	Checked   bool                   `json:"checked"`
	Driver    models.DriverStatus    `json:"driver"`
	Libraries []models.LibraryStatus `json:"libraries"`
	Note      string                 `json:"note,omitempty"`
}

type doctorProject struct {
	Root  string `json:"root,omitempty"`
	Error string `json:"error,omitempty"`
	// Lock is kiln.lock beside kiln.yaml.
	Lock doctorLock `json:"lock"`
}

type doctorLock struct {
	Path    string `json:"path,omitempty"`
	Present bool   `json:"present"`
	Error   string `json:"error,omitempty"`
}

type doctorModel struct {
	Name    string `json:"name"`
	Kind    string `json:"kind,omitempty"`
	Path    string `json:"path,omitempty"`
	Builtin bool   `json:"builtin"`
	Present bool   `json:"present"`
	// Verified is true when every recorded file matched its size and
	// hash (and, with --deep, every graph loaded); Checked is false when
	// nothing recorded the files (no kiln-manifest.json or catalogue).
	Verified bool     `json:"verified"`
	Checked  bool     `json:"checked"`
	Files    int      `json:"files"`
	Bytes    int64    `json:"bytes"`
	Graphs   int      `json:"graphs_loaded,omitempty"`
	Problems []string `json:"problems,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	// Locked is true when kiln.lock has an entry for the model.
	Locked bool `json:"locked"`
}

type doctorInotify struct {
	models.InotifyReport
	// WatchFolders is how many folders kiln watch would watch in this
	// project: one inotify watch each, and one instance per kiln watch.
	WatchFolders int    `json:"watch_folders"`
	OK           bool   `json:"ok"`
	Advice       string `json:"advice,omitempty"`
}

// doctor gathers the report. The error is the project's, returned when dir
// was named (explicit) or holds a kiln.yaml that cannot be read; the
// report is complete either way.
func (a *app) doctor(ctx context.Context, dir string, explicit, deep bool, pr doctorProbes) (*doctorReport, error) {
	rep := &doctorReport{
		Kiln:    doctorKiln{Version: version, Go: pr.goVersion, OS: pr.goos, Arch: pr.goarch},
		Runtime: doctorRuntime{Expected: models.ORTVersion, Device: models.ProviderCPU},
	}

	// The project first: kiln.yaml can name the library and the device.
	var cfg *manifests.Config
	var projErr error
	root, err := filepath.Abs(dir)
	if err != nil {
		root = dir
	}
	rep.Project.Root = root
	p, err := manifests.Load(root)
	switch {
	case err == nil:
		cfg = p.Config
	case errors.Is(err, manifests.ErrNoConfig) && !explicit:
		rep.Project.Error = fmt.Sprintf("no %s in %s: run kiln doctor in a project folder, or name it, to check its models", manifests.ConfigFile, root)
	default:
		rep.Project.Error = err.Error()
		projErr = err
	}
	if cfg != nil {
		if cfg.Runtime.Device != "" {
			rep.Runtime.Device = cfg.Runtime.Device
		}
		rep.Runtime.Fallback = cfg.Runtime.Fallback
	}

	a.doctorRuntime(rep, cfg, root, pr)
	a.doctorGPU(ctx, rep, pr)
	rep.Memory = models.ProbeMemory(withGOOS(pr.machine, pr.goos))
	if cfg != nil {
		a.doctorModels(ctx, rep, cfg, root, deep, pr)
	}
	rep.Inotify = doctorWatch(withGOOS(pr.machine, pr.goos), cfg, root)
	return rep, projErr
}

func withGOOS(o models.ProbeOptions, goos string) models.ProbeOptions {
	if o.GOOS == "" {
		o.GOOS = goos
	}
	return o
}

// doctorRuntime finds and loads the library and tries every provider.
func (a *app) doctorRuntime(rep *doctorReport, cfg *manifests.Config, root string, pr doctorProbes) {
	lo := models.LibraryOptions{Flag: a.ortLib, Getenv: pr.getenv, Device: rep.Runtime.Device}
	if cfg != nil {
		lo.Config, lo.ConfigDir = cfg.Runtime.Library, root
	}
	if cache, err := pr.cacheDir(); err == nil {
		lo.CacheDir = cache
		rep.Runtime.GPUBuild.Path = models.GPULibraryCachePath(cache)
		if _, err := os.Stat(rep.Runtime.GPUBuild.Path); err == nil {
			rep.Runtime.GPUBuild.Installed = true
		}
	}
	lib, source, err := pr.findLibrary(lo)
	if err != nil {
		rep.Runtime.Error = err.Error()
	} else {
		rep.Runtime.Library, rep.Runtime.Source = lib, source
		rep.Runtime.GPUBuild.InUse = rep.Runtime.GPUBuild.Installed && samePath(lib, rep.Runtime.GPUBuild.Path)
		if v, err := pr.loadRuntime(lib); err != nil {
			rep.Runtime.Error = err.Error()
			lib = ""
		} else {
			rep.Runtime.Version = v
		}
	}
	var pls []models.ProviderLibrary
	if rep.Runtime.Library != "" {
		pls = pr.providerLibraries(rep.Runtime.Library)
	}
	for _, name := range models.Providers {
		dp := doctorProvider{Name: name, How: "no library loaded"}
		for _, pl := range pls {
			if pl.Provider == name {
				dp.CompiledIn, dp.How = pl.CompiledIn, pl.How
			}
		}
		if lib != "" {
			dp.Checked = true
			if name == models.ProviderCPU {
				dp.Starts = true
			} else if err := pr.startProvider(lib, name); err != nil {
				dp.Error = err.Error()
			} else {
				dp.Starts = true
			}
		}
		rep.Providers = append(rep.Providers, dp)
	}
}

func samePath(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return ra == rb
}

// doctorGPU lists the GPUs and checks the driver, CUDA, cuDNN and TensorRT.
func (a *app) doctorGPU(ctx context.Context, rep *doctorReport, pr doctorProbes) {
	g := models.ProbeGPUs(ctx, withGOOS(pr.machine, pr.goos))
	prereq := pr.prereq
	if prereq.GOOS == "" {
		prereq.GOOS, prereq.GOARCH = pr.goos, pr.goarch
	}
	if prereq.Getenv == nil {
		prereq.Getenv = pr.getenv
	}
	r := models.CheckGPUPrereqs(ctx, models.ProviderTensorRT, prereq)
	rep.GPU = doctorGPU{Devices: g.Devices, Source: g.Source, Problem: g.Problem, Checked: r.Checked, Driver: r.Driver, Libraries: r.Libraries, Note: r.Note}
	if rep.GPU.Devices == nil {
		rep.GPU.Devices = []models.GPUDevice{}
	}
	switch {
	case len(g.Devices) > 0:
		var names []string
		for _, d := range g.Devices {
			s := fmt.Sprintf("%d: %s", d.Index, d.Name)
			if d.MemoryBytes > 0 {
				s += " (" + gib(d.MemoryBytes) + ")"
			}
			names = append(names, s)
		}
		rep.GPU.Summary = fmt.Sprintf("%d NVIDIA GPU(s): %s", len(g.Devices), strings.Join(names, "; "))
	case r.Driver.Found:
		rep.GPU.Summary = "none found, though the NVIDIA driver is installed (" + g.Problem + ")"
	default:
		rep.GPU.Summary = "none found: no NVIDIA GPU or driver (" + g.Problem + "); kiln runs on the CPU, and the cuda and tensorrt devices cannot start here"
	}
}

// doctorModels checks each configured model and its kiln.lock entry.
func (a *app) doctorModels(ctx context.Context, rep *doctorReport, cfg *manifests.Config, root string, deep bool, pr doctorProbes) {
	locked, lock := readLockNames(root)
	rep.Project.Lock = lock
	ms, err := store.LocalModels(root, cfg)
	if err != nil {
		rep.Project.Error = err.Error()
		return
	}
	opts := store.VerifyOptions{}
	if path, ok := store.FindCatalog(root); ok {
		if c, err := store.LoadCatalog(path); err == nil {
			opts.Catalog = c
		}
	}
	if deep && rep.Runtime.Version != "" {
		if rt, err := pr.deepRuntime(rep.Runtime.Library); err == nil {
			defer rt.Close()
			opts.Runtime = rt
		}
	}
	for _, m := range ms {
		dm := doctorModel{Name: m.Name, Kind: string(m.Kind), Path: m.Path, Builtin: m.Builtin != "", Locked: locked[m.Name]}
		if dm.Builtin {
			dm.Present, dm.Verified, dm.Checked = true, true, true
			rep.Models = append(rep.Models, dm)
			continue
		}
		if st, err := os.Stat(m.Dir); err == nil && st.IsDir() {
			dm.Present = true
		}
		r := pr.verify(ctx, m, opts)
		dm.Checked = r.Listed > 0
		dm.Verified = r.OK() && dm.Checked && (!deep || r.Graphs == r.GraphFiles)
		dm.Files, dm.Bytes, dm.Graphs = r.Files, r.Size, r.Graphs
		dm.Problems, dm.Notes = r.Problems, r.Notes
		rep.Models = append(rep.Models, dm)
	}
}

// readLockNames returns the model names kiln.lock has entries for, and
// what the doctor says of the file itself.
func readLockNames(root string) (map[string]bool, doctorLock) {
	l := doctorLock{Path: filepath.Join(root, store.LockName)}
	if _, err := os.Lstat(l.Path); errors.Is(err, fs.ErrNotExist) {
		return nil, l
	}
	l.Present = true
	lock, err := store.ReadLock(root)
	if err != nil {
		l.Error = err.Error()
		return nil, l
	}
	names := map[string]bool{}
	for n := range lock.Models {
		names[n] = true
	}
	return names, l
}

// doctorWatch counts the folders kiln watch would watch and compares them
// with the inotify limits.
func doctorWatch(machine models.ProbeOptions, cfg *manifests.Config, root string) doctorInotify {
	d := doctorInotify{InotifyReport: models.ProbeInotify(machine), OK: true}
	if cfg != nil {
		if ign, err := watch.NewIgnore(root, cfg.Output, cfg.Cache); err == nil {
			filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
				if err != nil || !e.IsDir() {
					return nil
				}
				if ign.Match(p) {
					return filepath.SkipDir
				}
				d.WatchFolders++
				return nil
			})
		}
	}
	switch {
	case d.MaxUserWatches < 0 || d.MaxUserInstances < 0:
		// Unknown limits (not Linux, or /proc unreadable): Problem says so.
	case int64(d.WatchFolders) > d.MaxUserWatches:
		d.OK = false
		d.Advice = fmt.Sprintf("kiln watch needs %d watches but the limit is %d, so it would poll some folders: sudo sysctl fs.inotify.max_user_watches=524288 (and echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-kiln-inotify.conf to keep it)", d.WatchFolders, d.MaxUserWatches)
	case int64(d.WatchFolders) > d.MaxUserWatches/2:
		d.Advice = fmt.Sprintf("kiln watch needs %d of the %d watches allowed, and editors and other watchers share that limit: consider sudo sysctl fs.inotify.max_user_watches=524288", d.WatchFolders, d.MaxUserWatches)
	case d.MaxUserInstances < 8:
		d.Advice = fmt.Sprintf("only %d inotify instances are allowed per user, and every kiln watch, editor and file manager uses some: consider sudo sysctl fs.inotify.max_user_instances=1024", d.MaxUserInstances)
	}
	return d
}

// gib formats a byte count for people.
func gib(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// writeDoctor prints the report as text, one screen.
func writeDoctor(w io.Writer, r *doctorReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	pf := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }

	pf("kiln\t%s (%s, %s/%s)\n", r.Kiln.Version, r.Kiln.Go, r.Kiln.OS, r.Kiln.Arch)
	rt := r.Runtime
	switch {
	case rt.Library != "" && rt.Version != "":
		pf("ONNX Runtime\t%s (kiln expects %s), from %s: %s\n", rt.Version, rt.Expected, rt.Source, rt.Library)
	case rt.Library != "":
		pf("ONNX Runtime\tfound by %s at %s, but it does not load: %s\n", rt.Source, rt.Library, rt.Error)
	default:
		pf("ONNX Runtime\tnot found: %s\n", oneLine(rt.Error))
	}
	device := rt.Device
	if rt.Fallback != "" {
		device += " (fallback " + rt.Fallback + ")"
	}
	pf("device\t%s\n", device)
	switch {
	case rt.GPUBuild.InUse:
		pf("GPU build\tin use: %s\n", rt.GPUBuild.Path)
	case rt.GPUBuild.Installed:
		pf("GPU build\tinstalled but not in use: %s\n", rt.GPUBuild.Path)
	case rt.GPUBuild.Path != "":
		pf("GPU build\tnot installed (kiln setup --device cuda puts it at %s)\n", rt.GPUBuild.Path)
	}

	pf("\nprovider\tcompiled in\tstarts\n")
	for _, p := range r.Providers {
		starts := "not tried (no library loaded)"
		switch {
		case !p.Checked:
		case p.Starts:
			starts = "yes"
		case p.CompiledIn:
			// It should start: the reason matters.
			starts = "no: " + oneLine(p.Error)
		default:
			starts = "no (not in this build)"
		}
		pf("  %s\t%s (%s)\t%s\n", p.Name, yesNo(p.CompiledIn), p.How, starts)
	}

	g := r.GPU
	pf("\nGPU\t%s\n", g.Summary)
	if !g.Checked {
		pf("  driver, CUDA\tnot checked: %s\n", g.Note)
	} else {
		switch {
		case g.Driver.Found:
			pf("  driver\t%s (%s)\n", g.Driver.Version, g.Driver.LibCUDA)
		default:
			pf("  driver\t%s\n", firstClause(g.Driver.Problem))
		}
		var missing []string
		for _, l := range g.Libraries {
			if l.Problem == "not found by the dynamic loader" {
				missing = append(missing, l.Name)
				continue
			}
			if l.Problem != "" {
				pf("  %s\tmissing (%s, wants %s): %s\n", l.Name, l.Component, l.Want, l.Problem)
				continue
			}
			pf("  %s\t%s (%s, via %s)\n", l.Name, l.Version, l.Path, l.Via)
		}
		if len(missing) > 0 {
			pf("  not found\t%s (CUDA %s, cuDNN %s, TensorRT %s wanted; kiln setup --device cuda says what to install)\n", strings.Join(missing, ", "), "12.x", "9.x", "10.x")
		}
	}

	m := r.Memory
	switch {
	case m.Problem != "":
		pf("\nmemory\t%s\n", m.Problem)
	default:
		limit := "no cgroup memory limit"
		if m.CgroupLimitBytes > 0 {
			limit = "cgroup " + m.Cgroup + " limit " + gib(m.CgroupLimitBytes)
		} else if m.Cgroup != "" {
			limit += " (cgroup " + m.Cgroup + ")"
		}
		pf("\nmemory\t%s total, %s available; %s\n", gib(m.TotalBytes), gib(m.AvailableBytes), limit)
	}

	pr := r.Project
	pf("\nproject\t%s\n", pr.Root)
	if pr.Error != "" {
		pf("  error\t%s\n", oneLine(pr.Error))
	}
	if pr.Lock.Path != "" {
		lock := "none (" + store.LockName + " is written by kiln models pull from Hugging Face)"
		if pr.Lock.Present {
			lock = pr.Lock.Path
		}
		if pr.Lock.Error != "" {
			lock += ": " + pr.Lock.Error
		}
		pf("  lock\t%s\n", lock)
	}
	if len(r.Models) > 0 {
		pf("  model\tpresent\tlocked\tverified\n")
	}
	for _, md := range r.Models {
		verified := ""
		switch {
		case md.Builtin:
			verified = "built in"
		case len(md.Problems) > 0:
			verified = "FAILED: " + oneLine(md.Problems[0])
		case !md.Checked:
			verified = "not checked (no kiln-manifest.json records its files)"
		case md.Verified:
			verified = fmt.Sprintf("yes (%d files, %s)", md.Files, gib(md.Bytes))
		default:
			verified = "no"
		}
		locked := yesNo(md.Locked)
		if md.Builtin {
			locked = "-"
		}
		pf("  %s\t%s\t%s\t%s\n", md.Name, yesNo(md.Present), locked, verified)
	}

	in := r.Inotify
	switch {
	case in.MaxUserWatches < 0 && in.Problem != "":
		pf("\ninotify\t%s\n", in.Problem)
	default:
		status := "ok"
		if in.Advice != "" {
			status = in.Advice
		}
		watches := "watches"
		if in.WatchFolders == 1 {
			watches = "watch"
		}
		pf("\ninotify\tmax_user_watches %d, max_user_instances %d; kiln watch here needs %d %s and 1 instance: %s\n", in.MaxUserWatches, in.MaxUserInstances, in.WatchFolders, watches, status)
	}
	return tw.Flush()
}

// firstClause keeps a message up to its first "; ", where kiln's messages
// turn from what is wrong to what to do.
func firstClause(s string) string {
	first, _, _ := strings.Cut(s, "; ")
	return first
}

// oneLine keeps the first line of a message, so a screen stays a screen.
func oneLine(s string) string {
	first, rest, ok := strings.Cut(strings.TrimSpace(s), "\n")
	if ok && rest != "" {
		return first + " …"
	}
	return first
}
