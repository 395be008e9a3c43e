package manifests

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/kiln-dev/kiln/internal/spelling"
)

// Checks that need the project's files or the built-in model's tables,
// so that kiln validate finds what a build would otherwise stop at.

// exemplarFileErrors reports each exemplar image that does not exist, at
// the manifest position that names it, in the words the build uses for a
// missing source file, with the nearest name in its folder when one is
// close. fsys reads the project (its os.Root), list lists folders.
func (r *resolver) exemplarFileErrors(fsys, list fs.FS) ErrorList {
	var errs ErrorList
	missing := map[string]bool{} // by path, once it has been looked at
	reported := map[Pos]bool{}   // a defaults block names a file once for many assets
	for _, a := range r.proj.Assets {
		ps := r.exemplarPos[a]
		for i, file := range a.Exemplars {
			gone, seen := missing[file]
			if !seen {
				// Only a missing file is reported here; one that
				// cannot be read for another reason (a link out of
				// the project, a permission) is the build's to report.
				_, err := fs.Stat(fsys, file)
				gone = err != nil && errors.Is(err, fs.ErrNotExist)
				missing[file] = gone
			}
			pos := a.At("exemplars")
			if i < len(ps) {
				pos = ps[i]
			}
			if !gone || reported[pos] {
				continue
			}
			reported[pos] = true
			hint := "add the file or fix the path in the manifest"
			if near := nearFile(list, file); near != "" {
				hint = fmt.Sprintf("did you mean %q?", near)
			}
			errs = append(errs, &Error{Pos: pos, Field: index(join(r.entries[a], "exemplars"), i),
				Msg: fmt.Sprintf("source file %s not found", file), Hint: hint})
		}
	}
	return errs
}

// nearFile returns the file in file's folder whose name is a plausible
// typo of file's, as a project path, or "".
func nearFile(list fs.FS, file string) string {
	dir, base := path.Split(file)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	ents, err := fs.ReadDir(list, dir)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	s := spelling.Suggest(base, names)
	if s == "" {
		return ""
	}
	return path.Join(dir, s)
}

// promptWarnings warns about assets that use the builtin:exemplar model
// without exemplar images and whose prompt names no material the model
// knows (reads says which, nil: no check): their build would fail. The
// model reads keywords, so the warning lists them. It is a warning, not
// an error, because the prompt is valid for any other model the asset
// may later use.
func (r *resolver) promptWarnings(reads func(prompt string) (bool, []string)) ErrorList {
	if reads == nil {
		return nil
	}
	var ws ErrorList
	for _, a := range r.proj.Assets {
		if !a.Kind.Generated() || len(a.Exemplars) > 0 {
			continue
		}
		if mod := r.cfg.Model(a.Model); mod == nil || mod.Builtin != "exemplar" {
			continue
		}
		ok, known := reads(a.Prompt)
		if ok {
			continue
		}
		ws = append(ws, &Error{Pos: a.At("prompt"), Field: join(r.entries[a], "prompt"),
			Msg: fmt.Sprintf("prompt %s names no material %s knows, so building it will fail; it reads keywords, not sentences", quote(a.Prompt), Exemplar),
			Hint: fmt.Sprintf("add one of the materials it knows: %s (synonyms such as rock, lawn or magma count too, with colours and overlays such as red, dark, mossy or snowy), or give the asset exemplars: images",
				joinNames(known))})
	}
	return ws
}
