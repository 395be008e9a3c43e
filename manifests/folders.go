package manifests

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// This file keeps kiln's own folders (output, cache) apart from the files
// it must never overwrite or delete, and keeps kiln.yaml from choosing a
// native library out of the project's own files. The checks are lexical,
// on cleaned slash paths: what matters is what kiln would do with the
// paths as written, and the walk of the project supplies what exists.

// vcsNames are the version-control folders kiln's folders must keep out of.
var vcsNames = []string{".git", ".hg", ".svn"}

// isVCS reports whether a file name is a version-control folder (or, for
// .git, the file a worktree or submodule has instead). Case is ignored, as
// macOS and Windows ignore it.
func isVCS(name string) bool {
	for _, v := range vcsNames {
		if strings.EqualFold(name, v) {
			return true
		}
	}
	return false
}

// folderRole says what kiln does with one of its folders, for messages.
type folderRole struct {
	name    string   // the kiln.yaml field: output or cache
	why     string   // what kiln does there that makes an overlap dangerous
	harm    string   // what that does to a file kiln should not touch
	suggest []string // folders to offer instead, best first
}

func roles() []folderRole {
	return []folderRole{
		{name: "output", why: "kiln writes its outputs there and kiln clean deletes them", harm: "overwrite or delete",
			suggest: []string{"out", "build/out", "kiln-out"}},
		{name: "cache", why: "kiln writes into the cache folder and kiln clean --cache deletes what it keeps there", harm: "delete",
			suggest: []string{".kiln/cache", ".cache/kiln", "kiln-cache"}},
	}
}

// folderSpec is the spec of output: and cache:, a project-relative folder
// that is not the project itself.
func folderSpec(doc, name, example string) *spec {
	s := pathSpec(doc, pathInside, example)
	check := s.post
	s.post = func(d *decoder, p string, v *value) (any, bool) {
		raw := v.v.(string)
		if raw != "" && !strings.HasPrefix(raw, "/") && !hasDrive(raw) && !strings.ContainsAny(raw, `\:`) && path.Clean(raw) == "." {
			why := "kiln writes and deletes files in its output folder"
			if name == "cache" {
				why = "kiln writes into the cache folder and kiln clean --cache deletes what it keeps there"
			}
			d.add(v.pos, p, fmt.Sprintf("%s %s is the project folder itself", name, quote(raw)), fmt.Sprintf("%s; use a sub-folder, e.g. %s: %s", why, name, example))
			return nil, false
		}
		return check(d, p, v)
	}
	// ".", "./." and the like, and any path through a VCS folder.
	return s.x("not", map[string]any{"pattern": `^(?:\./)*\.$|(?:^|/)\.(?:[Gg][Ii][Tt]|[Hh][Gg]|[Ss][Vv][Nn])(?:/|$)`})
}

// libraryPattern is what the schema allows as runtime.library: an absolute
// path, or a relative one that starts by leaving the project.
const libraryPattern = `^(?:/|[A-Za-z]:[/\\]|\\\\|\.\.[/\\])`

// librarySpec is the spec of runtime.library. A relative path is resolved
// against the project root (as models.FindLibrary does), so one that does
// not start with ".." names a file of the project and is refused here;
// Load also refuses absolute paths into the project.
func librarySpec() *spec {
	return str("Path of the ONNX Runtime shared library (default: search). It must lie outside the project, " +
		"e.g. /opt/onnxruntime/lib/libonnxruntime.so.1 (a relative path is taken from the project folder); " +
		"to use a library inside the project, pass --ort-lib or set KILN_ORT_LIB instead.").nonempty("").pat(libraryPattern).
		with(func(d *decoder, p string, v *value) (any, bool) {
			lib := v.v.(string)
			if libraryInside(lib, "") {
				d.add(v.pos, p, libraryMsg(lib), libraryHint)
				return nil, false
			}
			return lib, true
		})
}

func libraryMsg(lib string) string {
	return fmt.Sprintf("%q lies inside the project; kiln loads and runs this library, so kiln.yaml, which comes with the project's files, may not choose one of them", lib)
}

const libraryHint = "a library inside the project can only be chosen outside the project's files: pass --ort-lib PATH or set KILN_ORT_LIB=PATH; " +
	"here, name a library outside the project, e.g. /opt/onnxruntime/lib/libonnxruntime.so.1"

// libraryInside reports whether runtime.library names a file inside the
// project at root. With root "" (an fs.FS of unknown place) only relative
// paths that stay inside by their spelling count; with root, absolute
// paths and relative paths that leave and come back are resolved against
// it, and against root with its symlinks resolved, so a project opened
// through a link is still recognised.
func libraryInside(lib, root string) bool {
	if !filepath.IsAbs(lib) {
		if !escapes(filepath.Clean(lib)) {
			return true
		}
		if root == "" {
			return false
		}
		lib = filepath.Join(root, lib)
	}
	if root == "" {
		return false
	}
	roots := []string{root}
	if real, err := filepath.EvalSymlinks(root); err == nil && real != root {
		roots = append(roots, real)
	}
	libs := []string{filepath.Clean(lib)}
	if real, err := filepath.EvalSymlinks(lib); err == nil && real != libs[0] {
		libs = append(libs, real)
	}
	for _, r := range roots {
		for _, l := range libs {
			if rel, err := filepath.Rel(r, l); err == nil && !escapes(rel) {
				return true
			}
		}
	}
	return false
}

// escapes reports whether a cleaned OS path relative to some folder leaves
// it.
func escapes(rel string) bool {
	return rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// checkLibrary refuses a runtime.library inside the project at root (an
// absolute path, or one that leaves and comes back, which the spec cannot
// see without knowing where the project is).
func checkLibrary(cfg *Config, root string) *Error {
	lib := cfg.Runtime.Library
	if lib == "" || root == "" || !libraryInside(lib, root) {
		return nil
	}
	return &Error{Pos: cfg.at("runtime.library"), Field: "runtime.library", Msg: libraryMsg(lib), Hint: libraryHint}
}

// walked is what the walk of the project found.
type walked struct {
	// files are the manifests to read.
	files []string
	// inside maps "output" and "cache" to the manifests found inside that
	// folder, which are not read.
	inside map[string][]string
	// vcs are the .git, .hg and .svn entries, at any depth.
	vcs []string
	// skipped are warnings about matched files that are not read.
	skipped ErrorList
	errs    ErrorList
}

// sourceRead is one project file or folder that kiln reads, and where it
// is named.
type sourceRead struct {
	path  string
	pos   Pos
	model string // the model's name, for a model folder; "" for a file
}

// describe names the source for a message: "art/a.png, which
// a.kiln.yaml:3:4 reads" or "model folder models/sd, which kiln.yaml:3:7
// names (models.sd)".
func (s sourceRead) describe() string {
	if s.model != "" {
		return fmt.Sprintf("model folder %s, which %s names (models.%s)", s.path, s.pos, s.model)
	}
	return fmt.Sprintf("%s, which %s reads", s.path, s.pos)
}

// sourceReads lists every file the assets read and every model folder,
// sorted by path and position.
func (r *resolver) sourceReads() []sourceRead {
	var out []sourceRead
	for _, a := range r.proj.Assets {
		if a.Image != nil && a.Image.Source != "" {
			out = append(out, sourceRead{path: a.Image.Source, pos: a.At("image.source")})
		}
		ps := r.exemplarPos[a]
		for i, e := range a.Exemplars {
			pos := a.At("exemplars")
			if i < len(ps) {
				pos = ps[i]
			}
			out = append(out, sourceRead{path: e, pos: pos})
		}
		if a.Sprite != nil && a.Sprite.PixelArt != nil && a.Sprite.PixelArt.Palette != "" {
			out = append(out, sourceRead{path: a.Sprite.PixelArt.Palette, pos: a.At("sprite.pixel_art.palette")})
		}
		for _, l := range a.LoRAs {
			out = append(out, sourceRead{path: l.Path, pos: l.Pos})
		}
	}
	for _, name := range sortedKeys(r.cfg.Models) {
		m := r.cfg.Models[name]
		if m.Path != "" {
			out = append(out, sourceRead{path: m.Path, pos: m.Pos, model: name})
		}
		for _, l := range m.LoRAs {
			out = append(out, sourceRead{path: l.Path, pos: l.Pos})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].path != out[j].path {
			return out[i].path < out[j].path
		}
		return out[i].pos.before(out[j].pos)
	})
	return out
}

// relation says how folder dir and path p overlap: "is" (the same path),
// "holds" (p is inside dir), "lies inside" (dir is inside p), or "".
func relation(dir, p string) string {
	switch {
	case dir == p:
		return "is"
	case within(p, dir):
		return "holds"
	case within(dir, p):
		return "lies inside"
	}
	return ""
}

// more formats ", and N more ..." for a count of further conflicts.
func more(n int, what string) string {
	if n == 0 {
		return ""
	}
	if n == 1 {
		return ", and 1 more " + what
	}
	return fmt.Sprintf(", and %d more %ss", n, what)
}

// folderErrors checks output: and cache: against each other, the
// version-control folders, the manifests and every file and model folder
// the project reads. A folder whose value was refused is not checked
// further: its default would stand in for it and mislead.
func (r *resolver) folderErrors(w *walked) ErrorList {
	cfg := r.cfg
	reads := r.sourceReads()
	var manifests []string
	manifests = append(manifests, w.files...)
	for _, in := range w.inside {
		manifests = append(manifests, in...)
	}
	sort.Strings(manifests)
	folders := map[string]string{"output": cfg.Output, "cache": cfg.Cache}

	// problems returns what is wrong with dir as the named folder: one
	// message per kind of problem, the first of each kind named.
	problems := func(name, dir string, inside []string) (msgs []string, kinds []string) {
		q := fmt.Sprintf("%s %s", name, quote(dir))
		if _, ok := cfg.Where[name]; !ok {
			q += " (the default)"
		}
		segs := strings.Split(dir, "/")
		vcsDone := false
		for i, s := range segs {
			if isVCS(s) {
				v := strings.Join(segs[:i+1], "/")
				if v == dir {
					msgs = append(msgs, fmt.Sprintf("%s is the version-control folder %s", q, v))
				} else {
					msgs = append(msgs, fmt.Sprintf("%s is inside the version-control folder %s", q, v))
				}
				kinds, vcsDone = append(kinds, "vcs"), true
				break
			}
		}
		if !vcsDone {
			var held []string
			for _, v := range w.vcs {
				if within(v, dir) {
					held = append(held, v)
				}
			}
			if len(held) > 0 {
				msgs = append(msgs, fmt.Sprintf("%s holds the version-control folder %s%s", q, held[0], more(len(held)-1, "version-control folder")))
				kinds = append(kinds, "vcs")
			}
		}
		if len(inside) > 0 {
			msgs = append(msgs, fmt.Sprintf("%s holds the manifest %s%s", q, inside[0], more(len(inside)-1, "manifest")))
			kinds = append(kinds, "manifest")
		}
		var first *sourceRead
		var rel string
		others := map[string]bool{}
		for i := range reads {
			s := &reads[i]
			if v := relation(dir, s.path); v != "" {
				if first == nil {
					first, rel = s, v
				} else if s.path != first.path {
					others[s.path] = true
				}
			}
		}
		if first != nil {
			msgs = append(msgs, fmt.Sprintf("%s %s %s%s", q, rel, first.describe(), more(len(others), "project file")))
			kind := "source"
			if first.model != "" {
				kind = "model"
			}
			kinds = append(kinds, kind)
		}
		return msgs, kinds
	}

	// usable reports whether dir could be the named folder, for the
	// folder a message suggests.
	usable := func(name, dir string) bool {
		var inside []string
		for _, m := range manifests {
			if within(m, dir) {
				inside = append(inside, m)
			}
		}
		if msgs, _ := problems(name, dir, inside); len(msgs) > 0 {
			return false
		}
		for other, od := range folders {
			if other != name && !cfg.badFields[other] && relation(dir, od) != "" {
				return false
			}
		}
		return true
	}
	suggestion := func(ro folderRole) string {
		for _, c := range ro.suggest {
			if usable(ro.name, c) {
				return ro.name + ": " + c
			}
		}
		return ro.name + ": " + ro.suggest[0]
	}

	var errs ErrorList
	for _, ro := range roles() {
		dir := folders[ro.name]
		if cfg.badFields[ro.name] {
			continue
		}
		msgs, kinds := problems(ro.name, dir, w.inside[ro.name])
		for i, msg := range msgs {
			var hint string
			switch kinds[i] {
			case "vcs":
				hint = fmt.Sprintf("%s, which must never happen to version-control data; choose a folder outside .git, .hg and .svn, e.g. %s", ro.why, suggestion(ro))
			case "manifest":
				hint = fmt.Sprintf("kiln does not read manifests inside its %s folder", ro.name)
				if ro.name == "cache" {
					hint += ", and kiln clean --cache would delete them"
				}
				hint += fmt.Sprintf("; move them out of it, or choose a folder for kiln's %s that holds no manifests, e.g. %s", plural(ro.name), suggestion(ro))
			case "source":
				hint = fmt.Sprintf("%s, so kiln could %s sources; choose a folder for kiln's %s that holds no sources, e.g. %s", ro.why, ro.harm, plural(ro.name), suggestion(ro))
			case "model":
				hint = fmt.Sprintf("%s, so kiln could %s model files; choose a folder for kiln's %s outside every model folder, e.g. %s", ro.why, ro.harm, plural(ro.name), suggestion(ro))
			}
			errs = append(errs, &Error{Pos: cfg.at(ro.name), Field: ro.name, Msg: msg, Hint: hint})
		}
	}

	if !cfg.badFields["output"] && !cfg.badFields["cache"] {
		out, cache := cfg.Output, cfg.Cache
		const hint = "kiln clean deletes kiln's outputs and kiln writes into the cache folder and kiln clean --cache deletes what it keeps there, so neither may hold the other; give each its own folder, e.g. output: out and cache: .kiln/cache"
		switch relation(out, cache) {
		case "is":
			errs = append(errs, &Error{Pos: cfg.at("cache"), Field: "cache", Msg: fmt.Sprintf("cache %s is also the output folder", quote(cache)), Hint: hint})
		case "holds":
			errs = append(errs, &Error{Pos: cfg.at("cache"), Field: "cache", Msg: fmt.Sprintf("cache %s lies inside output %s", quote(cache), quote(out)), Hint: hint})
		case "lies inside":
			errs = append(errs, &Error{Pos: cfg.at("output"), Field: "output", Msg: fmt.Sprintf("output %s lies inside cache %s", quote(out), quote(cache)), Hint: hint})
		}
	}
	return errs
}

func plural(folder string) string {
	if folder == "output" {
		return "outputs"
	}
	return "cache"
}

// skipWarning is the warning for a file the manifest globs match that
// kiln does not read because of what it is: a symlink, or not a regular
// file.
func skipWarning(fsys fs.FS, name string, mode fs.FileMode) *Error {
	if mode&fs.ModeSymlink != 0 {
		to := ""
		if target, err := fs.ReadLink(fsys, name); err == nil {
			to = " (to " + strconv.Quote(filepath.ToSlash(target)) + ")"
		}
		return &Error{Pos: Pos{File: name}, Msg: "is a symlink" + to + ", so kiln skips it: it reads no manifest through a symlink",
			Hint: "put the file itself here instead of a link, or remove the link"}
	}
	return &Error{Pos: Pos{File: name}, Msg: fmt.Sprintf("is %s, not a regular file, so kiln skips it", describeMode(mode)),
		Hint: "make it a regular file, or remove it"}
}

// describeMode names a file type that is not a regular file.
func describeMode(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	case mode&fs.ModeSymlink != 0:
		return "a symlink"
	case mode.IsDir():
		return "a folder"
	}
	return "a special file"
}
