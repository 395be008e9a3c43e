package manifests

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// ConfigFile is the name of a project's configuration file.
const ConfigFile = "kiln.yaml"

// fileDecl is one decoded manifest before project-wide resolution.
type fileDecl struct {
	name      string
	defaults  *Defaults
	assets    []*object
	atlases   []*object
	materials []*object
}

// Load reads the project at root: kiln.yaml, then every manifest its
// globs find (skipping the output and cache folders and dot-folders). It
// returns every problem of every file at once, as an ErrorList sorted by
// file and position, and a nil Project; when root has no kiln.yaml the
// error wraps ErrNoConfig.
func Load(root string) (*Project, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("load project %s: %w", root, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("load project: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("load project: %s is not a folder (pass the folder that holds %s)", abs, ConfigFile)
	}
	p, err := LoadFS(os.DirFS(abs))
	if err != nil {
		if errors.Is(err, ErrNoConfig) {
			return nil, fmt.Errorf("%w in %s (run \"kiln init\" to create a project there, or pass the folder that holds %s)", ErrNoConfig, abs, ConfigFile)
		}
		return nil, err
	}
	p.Root = abs
	return p, nil
}

// LoadFS is Load on a file system whose root is the project folder (an
// os.DirFS, or an fstest.MapFS in tests). Project.Root is left empty.
func LoadFS(fsys fs.FS) (*Project, error) {
	sp := newSpecs()
	var errs ErrorList
	lim := DefaultLimits()

	data, e := readLimited(fsys, ConfigFile, lim.MaxManifestBytes)
	if e != nil {
		if errors.Is(e.err, fs.ErrNotExist) {
			return nil, ErrNoConfig
		}
		return nil, ErrorList{e.Error}
	}
	cfg, cerrs, ok := parseConfig(sp, data)
	errs = append(errs, cerrs...)
	if !ok {
		errs.Sort()
		return nil, errs
	}

	files, ferrs := findManifests(fsys, cfg)
	errs = append(errs, ferrs...)
	proj := &Project{Config: cfg, Files: files}
	r := &resolver{specs: sp, cfg: cfg, proj: proj, entries: map[any]string{}, atlasObj: map[*Atlas]*object{}}
	// Files parse independently, so they parse in parallel; results are
	// kept by index so everything after this stays in file order.
	type result struct {
		fd   *fileDecl
		errs ErrorList
	}
	results := make([]result, len(files))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, name := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			data, e := readLimited(fsys, name, cfg.Limits.MaxManifestBytes)
			if e != nil {
				results[i].errs = ErrorList{e.Error}
				return
			}
			results[i].fd, results[i].errs = parseManifest(sp, cfg, name, data)
		}()
	}
	wg.Wait()
	var decls []*fileDecl
	for _, res := range results {
		errs = append(errs, res.errs...)
		if res.fd != nil {
			decls = append(decls, res.fd)
		}
	}
	for _, fd := range decls {
		for i, o := range fd.assets {
			path := index("assets", i)
			if a := r.asset(fd, path, o); a != nil {
				r.entries[a] = path
				proj.Assets = append(proj.Assets, a)
				if a.Material != nil {
					proj.Materials = append(proj.Materials, a.Material)
				}
			}
		}
		for i, o := range fd.atlases {
			if a := r.atlas(fd, index("atlases", i), o); a != nil {
				proj.Atlases = append(proj.Atlases, a)
			}
		}
		for i, o := range fd.materials {
			if m := r.material(fd, index("materials", i), o, nil); m != nil {
				proj.Materials = append(proj.Materials, m)
			}
		}
	}
	r.crossCheck()
	errs = append(errs, r.errs...)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return proj, nil
}

// readError is a read failure as a positioned Error plus its cause.
type readError struct {
	*Error
	err error
}

// readLimited reads a project file, refusing it before reading when it is
// larger than max bytes (and while reading, should it grow).
func readLimited(fsys fs.FS, name string, max int64) ([]byte, *readError) {
	tooBig := func(n string) *readError {
		if name == ConfigFile {
			return &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("file is %s bytes, more than %d", n, max),
				Hint: "kiln.yaml is read before its own limits apply; keep it small and put assets in manifests"}}
		}
		return &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("file is %s bytes, more than limits.max_manifest_bytes (%d)", n, max),
			Hint: "split it into several manifests, or raise limits.max_manifest_bytes in kiln.yaml"}}
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("cannot open: %v", unwrapPath(err))}, err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))}, err: err}
	}
	if st.IsDir() {
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: "is a folder, not a file"}}
	}
	if st.Size() > max {
		return nil, tooBig(fmt.Sprint(st.Size()))
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))}, err: err}
	}
	if int64(len(data)) > max {
		return nil, tooBig("more than " + fmt.Sprint(max))
	}
	return data, nil
}

// unwrapPath drops the path from a *fs.PathError; the Error's position
// already names the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkVersion finds the top-level version field and refuses anything but
// 1. A file of another version is not checked further: its fields would
// only produce noise.
func checkVersion(d *decoder, root *yaml.Node) bool {
	if root.Kind != yaml.MappingNode {
		return true
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "version" {
			continue
		}
		n := d.enter(v)
		if n == nil {
			return false
		}
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && n.Value == "1" {
			return true
		}
		d.add(d.pos(n), "version", fmt.Sprintf("unsupported version %s", describe(n)), "this kiln reads version 1; set version: 1, or use the kiln that wrote this file")
		return false
	}
	return true
}

// parseConfig reads kiln.yaml. ok is false when the file is too broken to
// load manifests against (bad YAML or version); field errors keep ok true
// with built-in values in place of bad ones.
func parseConfig(sp *specs, data []byte) (cfg *Config, errs ErrorList, ok bool) {
	lim := DefaultLimits()
	d := newDecoder(ConfigFile, &lim, nil)
	root, e := parseYAML(ConfigFile, data)
	if e != nil {
		return nil, ErrorList{e}, false
	}
	if root == nil {
		return nil, ErrorList{{Pos: Pos{File: ConfigFile, Line: 1, Col: 1}, Msg: `missing required field "version"`, Hint: `add "version: 1" at the top`}}, false
	}
	if !d.prewalk(root) || !checkVersion(d, root) {
		return nil, d.errs, false
	}
	v := d.decode(sp.config, root, "")
	if v == nil {
		return nil, d.errs, false
	}
	o := v.v.(*object)
	cfg = bindConfig(sp, o)

	// Model references in defaults are checked against every name written
	// under models:, even those whose entry is broken (already reported).
	names := map[string]*Model{}
	for n, m := range cfg.Models {
		names[n] = m
	}
	if mo := o.sub("models"); mo != nil {
		for _, e := range mo.ents {
			if names[e.name] == nil {
				names[e.name] = &Model{Name: e.name}
			}
		}
	}
	cfg.refNames = names

	if dv, ok := o.get("defaults"); ok {
		d.lim, d.models = &cfg.Limits, names
		if dd := d.decode(sp.defaults, dv.v.(*yaml.Node), "defaults"); dd != nil {
			do := dd.v.(*object)
			cfg.Defaults = &Defaults{Where: map[string]Pos{}, obj: do}
			recordWhere(do, "", cfg.Defaults.Where)
			delete(cfg.Where, "defaults")
			for k, p := range cfg.Defaults.Where {
				cfg.Where["defaults."+k] = p
			}
			cfg.Where["defaults"] = dd.pos
		}
	}
	for _, c := range []struct {
		name, val string
	}{{"output", cfg.Output}, {"cache", cfg.Cache}} {
		if c.val == "." {
			d.add(cfg.at(c.name), c.name, fmt.Sprintf("%s must be a folder inside the project, not the project itself", c.name), "use a sub-folder, e.g. "+sp.config.field(c.name).spec.def.(string))
		}
	}
	if cfg.Output != "." && cfg.Cache != "." && (within(cfg.Output, cfg.Cache) || within(cfg.Cache, cfg.Output)) {
		d.add(cfg.at("cache"), "cache", fmt.Sprintf("cache %q and output %q overlap", cfg.Cache, cfg.Output), "kiln clean empties the output; keep the cache in a separate folder")
	}
	return cfg, d.errs, true
}

func (c *Config) at(field string) Pos {
	if p, ok := c.Where[field]; ok {
		return p
	}
	return Pos{File: ConfigFile, Line: 1, Col: 1}
}

// within reports whether slash path a is b or inside b.
func within(a, b string) bool { return a == b || strings.HasPrefix(a, b+"/") }

// parseManifest decodes one manifest file against the configuration.
func parseManifest(sp *specs, cfg *Config, name string, data []byte) (*fileDecl, ErrorList) {
	d := newDecoder(name, &cfg.Limits, cfg.refNames)
	root, e := parseYAML(name, data)
	if e != nil {
		return nil, ErrorList{e}
	}
	if root == nil {
		return nil, ErrorList{{Pos: Pos{File: name, Line: 1, Col: 1}, Msg: `missing required field "version"`, Hint: `add "version: 1" at the top`}}
	}
	if !d.prewalk(root) || !checkVersion(d, root) {
		return nil, d.errs
	}
	v := d.decode(sp.manifest, root, "")
	if v == nil || d.bombed {
		return nil, d.errs
	}
	o := v.v.(*object)
	fd := &fileDecl{name: name}
	if do := o.sub("defaults"); do != nil {
		fd.defaults = &Defaults{Where: map[string]Pos{}, obj: do}
		recordWhere(do, "", fd.defaults.Where)
	}
	entries := func(field string) []*object {
		lv, ok := o.get(field)
		if !ok {
			return nil
		}
		var out []*object
		for _, it := range lv.v.([]*value) {
			out = append(out, it.v.(*object))
		}
		return out
	}
	fd.assets = entries("assets")
	fd.atlases = entries("atlases")
	fd.materials = entries("materials")
	return fd, d.errs
}

// findManifests walks the project for files matching the config's globs,
// skipping the output and cache folders and every dot-folder (.git,
// .kiln, editor folders). Only regular files count; symlinks are not
// followed.
func findManifests(fsys fs.FS, cfg *Config) ([]string, ErrorList) {
	var files []string
	var errs ErrorList
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			errs = append(errs, &Error{Pos: Pos{File: p}, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err)), Hint: "fix its permissions, or move it out of the project"})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(d.Name(), ".") || p == cfg.Output || p == cfg.Cache) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || p == ConfigFile || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		for _, g := range cfg.Manifests {
			if matchGlob(g, p) {
				files = append(files, p)
				break
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, &Error{Pos: Pos{File: "."}, Msg: fmt.Sprintf("cannot list the project: %v", err)})
	}
	sort.Strings(files)
	return files, errs
}

// ManifestFile reports whether a project-relative, slash-separated path
// is one Load would read as a manifest, for watchers deciding what a
// change touches.
func (c *Config) ManifestFile(name string) bool {
	name = path.Clean(name)
	if name == ConfigFile || within(name, c.Output) || within(name, c.Cache) {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, ".") {
			return false
		}
	}
	for _, g := range c.Manifests {
		if matchGlob(g, name) {
			return true
		}
	}
	return false
}
