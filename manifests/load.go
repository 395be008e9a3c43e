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
	"strconv"
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
// globs find (skipping dot-folders, and refusing manifests inside the
// output and cache folders). It returns every problem of every file at
// once, as an ErrorList sorted by file and position, and a nil Project;
// when root has no kiln.yaml the error wraps ErrNoConfig.
//
// Files are read through an os.Root, so kiln.yaml and the manifests
// cannot lead out of the project: a symlink that points outside it is an
// error naming the link and its target, and its target is never read.
func Load(root string) (*Project, error) {
	return LoadWith(root, LoadOptions{})
}

// LoadOptions are the checks Load makes with knowledge that lives above
// this package: manifests knows words and positions, not models, so the
// caller that has the models passes them in.
type LoadOptions struct {
	// ExemplarPrompt reports whether builtin:exemplar can read prompt, and
	// the materials it knows, for the warning when it cannot. nil leaves
	// prompts unchecked.
	ExemplarPrompt func(prompt string) (ok bool, known []string)
}

// LoadWith is Load with the checks of o.
func LoadWith(root string, o LoadOptions) (*Project, error) {
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
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("load project: %w", err)
	}
	defer r.Close()
	// Every open, stat and read goes through the os.Root. Listings come
	// from an os.DirFS of the same folder: an os.Root stats every entry it
	// lists, several times slower on large output folders, while a
	// listing only gives names and types, and fs.WalkDir follows no
	// symlink. A folder swapped for a link during the walk can make names
	// from elsewhere show up, but the os.Root refuses to open them.
	p, err := loadFS(r.FS(), os.DirFS(abs), abs, o)
	if err != nil {
		if errors.Is(err, ErrNoConfig) {
			return nil, fmt.Errorf("%w in %s (run \"kiln init\" to create a project there, or pass the folder that holds %s)", ErrNoConfig, abs, ConfigFile)
		}
		return nil, err
	}
	p.Root = abs
	return p, nil
}

// LoadFS is Load on a file system whose root is the project folder (the
// FS of an os.Root, or an fstest.MapFS in tests). Project.Root is left
// empty. Symlinks are checked by their spelling where fsys can read them
// (fs.ReadLinkFS); that a link's target stays inside the project is up to
// fsys, as os.Root ensures. Without the project's place on disk, an
// absolute runtime.library is not checked against it.
func LoadFS(fsys fs.FS) (*Project, error) {
	return LoadFSWith(fsys, LoadOptions{})
}

// LoadFSWith is LoadFS with the checks of o.
func LoadFSWith(fsys fs.FS, o LoadOptions) (*Project, error) {
	return loadFS(fsys, fsys, "", o)
}

// loadFS is LoadFS for the project at root ("" when unknown), listing
// folders with list and reading files with fsys.
func loadFS(fsys, list fs.FS, root string, o LoadOptions) (*Project, error) {
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
	if e := checkLibrary(cfg, root); e != nil {
		errs = append(errs, e)
	}

	w := findManifests(fsys, list, cfg)
	errs = append(errs, w.errs...)
	files := w.files
	proj := &Project{Config: cfg, Files: files}
	r := &resolver{specs: sp, cfg: cfg, proj: proj, entries: map[any]string{}, atlasObj: map[*Atlas]*object{}, exemplarPos: map[*Asset][]Pos{}}
	// Files parse independently, so they parse in parallel; results are
	// kept by index so everything after this stays in file order.
	type result struct {
		fd   *fileDecl
		errs ErrorList
		data []byte // the file's text, kept when it could not be parsed
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
			if results[i].fd == nil {
				results[i].data = data
			}
		}()
	}
	wg.Wait()
	var decls []*fileDecl
	for i, res := range results {
		errs = append(errs, res.errs...)
		if res.fd != nil {
			decls = append(decls, res.fd)
		} else if res.data != nil {
			if r.broken == nil {
				r.broken = map[string][]byte{}
			}
			r.broken[files[i]] = res.data
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
	errs = append(errs, r.folderErrors(w)...)
	errs = append(errs, r.exemplarFileErrors(fsys, list)...)
	errs = append(errs, r.maskFileErrors(fsys, list)...)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	proj.Warnings = append(w.skipped, r.promptWarnings(o.ExemplarPrompt)...)
	proj.Warnings.Sort()
	return proj, nil
}

// readError is a read failure as a positioned Error plus its cause.
type readError struct {
	*Error
	err error
}

// readLimited reads a project file, refusing it before reading when it is
// larger than max bytes (and while reading, should it grow), when it is
// not a regular file (a named pipe would block the read), and when it is
// a symlink whose target is absolute or climbs out of the project by its
// spelling. A link's target is never read then, so nothing of a file
// outside the project reaches a message.
func readLimited(fsys fs.FS, name string, max int64) ([]byte, *readError) {
	tooBig := func(n string) *readError {
		if name == ConfigFile {
			return &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("file is %s bytes, more than %d", n, max),
				Hint: "kiln.yaml is read before its own limits apply; keep it small and put assets in manifests"}}
		}
		return &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("file is %s bytes, more than limits.max_manifest_bytes (%d)", n, max),
			Hint: "split it into several manifests, or raise limits.max_manifest_bytes in kiln.yaml"}}
	}
	// A symlink: say so, naming its target, whatever goes wrong with it.
	link := ""
	if li, err := fs.Lstat(fsys, name); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		target, err := fs.ReadLink(fsys, name)
		if err != nil {
			return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("is a symlink that cannot be read: %v", unwrapPath(err)), Hint: linkHint}}
		}
		link = filepath.ToSlash(target)
		if linkLeaves(name, target) {
			return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("is a symlink to %s, outside the project; kiln reads project files only from inside the project", strconv.Quote(link)), Hint: linkHint}}
		}
	}
	linkFailed := func(err error) *readError {
		if errors.Is(err, fs.ErrNotExist) {
			return &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("is a symlink to %s, which does not exist", strconv.Quote(link)), Hint: linkHint}}
		}
		// os.Root refuses a chain of links that ends outside the project.
		return &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("is a symlink to %s, which kiln cannot follow: %v", strconv.Quote(link), unwrapPath(err)), Hint: linkHint}}
	}
	st, err := fs.Stat(fsys, name)
	if err != nil {
		if link != "" {
			return nil, linkFailed(err)
		}
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("cannot open: %v", unwrapPath(err))}, err: err}
	}
	switch {
	case st.IsDir():
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: "is a folder, not a file"}}
	case !st.Mode().IsRegular():
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("is %s, not a regular file", describeMode(st.Mode())), Hint: "replace it with a regular file"}}
	case st.Size() > max:
		return nil, tooBig(fmt.Sprint(st.Size()))
	}
	f, err := fsys.Open(name)
	if err != nil {
		if link != "" {
			return nil, linkFailed(err)
		}
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("cannot open: %v", unwrapPath(err))}, err: err}
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))}, err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, &readError{Error: &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("is %s, not a regular file", describeMode(st.Mode())), Hint: "replace it with a regular file"}}
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

// linkHint is what to do about a project file that is a symlink kiln
// will not follow.
const linkHint = "put the file itself in the project instead of a link, or make the link point to a file inside the project by a relative path"

// linkLeaves reports whether a symlink at name (slash-separated, relative
// to the project root) with the given target leaves the project by its
// spelling: an absolute target, or one whose ".." climb above the root.
// Absolute targets count as leaving even when they name a place inside:
// os.Root refuses them too.
func linkLeaves(name, target string) bool {
	t := filepath.ToSlash(target)
	if filepath.IsAbs(target) || path.IsAbs(t) || hasDrive(t) || strings.HasPrefix(t, "//") {
		return true
	}
	j := path.Join(path.Dir(name), t)
	return j == ".." || strings.HasPrefix(j, "../")
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
	// A folder whose value was refused keeps its default in cfg; later
	// checks skip it rather than report problems of a value nobody wrote.
	for _, name := range []string{"output", "cache"} {
		if _, ok := o.get(name); o.has(name) && !ok {
			if cfg.badFields == nil {
				cfg.badFields = map[string]bool{}
			}
			cfg.badFields[name] = true
		}
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

// findManifests walks the project for files matching the config's globs.
// It skips every dot-folder (.git, .kiln, editor folders) and dot-file,
// notes every version-control folder it passes (at any depth), and sorts
// what the globs match: regular files to read; files inside the output or
// cache folder, which are not read (folderErrors refuses them); and
// symlinks and special files, which are not read either (a warning each).
// Symlinks are never followed. The walk lists folders with list and reads
// link targets, for warnings, with fsys.
func findManifests(fsys, list fs.FS, cfg *Config) *walked {
	w := &walked{inside: map[string][]string{}}
	globs := make([][]string, len(cfg.Manifests))
	for i, g := range cfg.Manifests {
		globs[i] = strings.Split(g, "/")
	}
	// matches is Config.matches for many names: the globs split once, and
	// a glob's last segment tried on the file name first, so the files of
	// a large output folder cost little.
	matches := func(p, base string) bool {
		for _, g := range globs {
			if last := g[len(g)-1]; last != "**" {
				if ok, _ := path.Match(last, base); !ok {
					continue
				}
			}
			if matchSegs(g, strings.Split(p, "/")) {
				return true
			}
		}
		return false
	}
	err := fs.WalkDir(list, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			w.errs = append(w.errs, &Error{Pos: Pos{File: p}, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err)), Hint: "fix its permissions, or move it out of the project"})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if p == "." {
			return nil
		}
		if isVCS(d.Name()) {
			w.vcs = append(w.vcs, p)
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || p == ConfigFile || !matches(p, d.Name()) {
			return nil
		}
		switch {
		case within(p, cfg.Output):
			w.inside["output"] = append(w.inside["output"], p)
		case within(p, cfg.Cache):
			w.inside["cache"] = append(w.inside["cache"], p)
		case d.Type().IsRegular():
			w.files = append(w.files, p)
		default:
			w.skipped = append(w.skipped, skipWarning(fsys, p, d.Type()))
		}
		return nil
	})
	if err != nil {
		w.errs = append(w.errs, &Error{Pos: Pos{File: "."}, Msg: fmt.Sprintf("cannot list the project: %v", err)})
	}
	sort.Strings(w.files)
	return w
}

// matches reports whether a project-relative slash path matches one of
// the manifest globs.
func (c *Config) matches(name string) bool {
	for _, g := range c.Manifests {
		if matchGlob(g, name) {
			return true
		}
	}
	return false
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
	return c.matches(name)
}
