package manifests

import (
	"fmt"
	"strings"
)

// hfRepoPattern is a Hugging Face repository id, ORG/REPO, for the
// schema; hfRepoPost adds the rules a pattern cannot say well.
const hfRepoPattern = `^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$`

// hfRepoHint ends every hf: error, so the user sees the expected form.
const hfRepoHint = "write the repository as ORG/REPO, as in its address https://huggingface.co/ORG/REPO, e.g. hf: stabilityai/sd-turbo"

// hfRepoPost checks hf: against the Hub's rules for repository ids (as
// huggingface_hub's validate_repo_id): owner and name of letters, digits,
// "-", "_" and ".", neither starting nor ending with "-" or ".", without
// "--" or "..", at most 96 characters each, the name not ending in ".git".
func hfRepoPost(d *decoder, p string, v *value) (any, bool) {
	id := v.v.(string)
	bad := func(msg string) (any, bool) {
		d.add(v.pos, p, msg, hfRepoHint)
		return nil, false
	}
	if strings.HasPrefix(id, "hf:") {
		d.add(v.pos, p, fmt.Sprintf("hf: %s starts with \"hf:\"", quote(id)),
			fmt.Sprintf("write the repository alone, hf: %s; revision: and subfolder: are fields of their own", strings.TrimPrefix(id, "hf:")))
		return nil, false
	}
	if strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://") {
		return bad(fmt.Sprintf("hf: %s is a URL, not a repository id", quote(id)))
	}
	owner, name, ok := strings.Cut(id, "/")
	if !ok || owner == "" || name == "" {
		return bad(fmt.Sprintf("hf: %s is not ORG/REPO", quote(id)))
	}
	if strings.Contains(name, "/") {
		return bad(fmt.Sprintf("hf: %s has more than one \"/\"; a folder inside the repository goes in subfolder:", quote(id)))
	}
	switch owner {
	case "datasets", "spaces":
		return bad(fmt.Sprintf("hf: %s names a %s repository, which holds no models", quote(id), strings.TrimSuffix(owner, "s")))
	}
	for _, part := range []struct{ what, s string }{{"owner", owner}, {"repository name", name}} {
		switch {
		case len(part.s) > 96:
			return bad(fmt.Sprintf("the %s in hf: %s is longer than 96 characters", part.what, quote(id)))
		case strings.ContainsFunc(part.s, func(r rune) bool { return !isRepoChar(r) }):
			return bad(fmt.Sprintf("the %s in hf: %s may hold only letters, digits, \"-\", \"_\" and \".\"", part.what, quote(id)))
		case strings.HasPrefix(part.s, "-") || strings.HasPrefix(part.s, ".") || strings.HasSuffix(part.s, "-") || strings.HasSuffix(part.s, "."):
			return bad(fmt.Sprintf("the %s in hf: %s may not start or end with \"-\" or \".\"", part.what, quote(id)))
		case strings.Contains(part.s, "--") || strings.Contains(part.s, ".."):
			return bad(fmt.Sprintf("the %s in hf: %s may not contain \"--\" or \"..\"", part.what, quote(id)))
		}
	}
	if strings.HasSuffix(name, ".git") {
		return bad(fmt.Sprintf("hf: %s ends in \".git\"", quote(id)))
	}
	return id, true
}

func isRepoChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.'
}

// hfRevisionPost checks revision: as something a branch, tag or commit
// can be spelt as (as kiln models pull's hf:...@REVISION).
func hfRevisionPost(d *decoder, p string, v *value) (any, bool) {
	rev := v.v.(string)
	hint := "name a branch, tag or commit of the repository, e.g. revision: main, revision: v1.0 or revision: refs/pr/3"
	msg := ""
	switch {
	case strings.ContainsAny(rev, " \t\\@") || strings.ContainsFunc(rev, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		msg = fmt.Sprintf("revision %s contains a space, a backslash, an \"@\" or a control character", quote(rev))
	case strings.Contains(rev, ".."):
		msg = fmt.Sprintf("revision %s contains \"..\"", quote(rev))
	case strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.Contains(rev, "//"):
		msg = fmt.Sprintf("revision %s has an empty path element", quote(rev))
	case strings.HasPrefix(rev, "-"):
		msg = fmt.Sprintf("revision %s starts with \"-\"", quote(rev))
	}
	if msg != "" {
		d.add(v.pos, p, msg, hint)
		return nil, false
	}
	return rev, true
}

// hfSubfolderPost checks subfolder: as a clean relative folder of the
// repository.
func hfSubfolderPost(d *decoder, p string, v *value) (any, bool) {
	sub := v.v.(string)
	clean, msg, hint := checkPath(sub, pathInside, "onnx")
	if msg == "" && clean != sub {
		msg, hint = fmt.Sprintf("subfolder %s is not in its simplest form", quote(sub)), "write subfolder: "+clean
	}
	if msg == "" {
		for _, seg := range strings.Split(sub, "/") {
			if seg == "." || seg == ".." {
				msg, hint = fmt.Sprintf("subfolder %s contains %s", quote(sub), quote(seg)), "name the folder inside the repository, e.g. subfolder: onnx"
				break
			}
		}
	}
	if msg != "" {
		msg = strings.Replace(msg, "path ", "subfolder ", 1)
		msg = strings.Replace(msg, "leaves the project", "leaves the repository", 1)
		hint = strings.Replace(hint, "paths are relative to the project root and stay inside it", "a subfolder is relative to the repository's top and stays inside it", 1)
		hint = strings.Replace(hint, "relative to the project root", "relative to the repository's top", 1)
		d.add(v.pos, p, msg, hint)
		return nil, false
	}
	return sub, true
}

// isSet reports whether the field was written with a usable value.
func isSet(o *object, name string) bool {
	_, ok := o.get(name)
	return ok
}

// refused reports whether the field was written but its value refused
// (already reported).
func refused(o *object, name string) bool { return o.has(name) && !isSet(o, name) }

// modelObjectCheck checks a models: entry written as a mapping: it needs
// path: or hf:, and revision: and subfolder: only mean something with
// hf:.
func modelObjectCheck(d *decoder, p string, o *object) {
	if !o.has("path") && !o.has("hf") {
		d.add(o.pos, p, `missing required field "path"`,
			"add path: models/NAME or path: builtin:exemplar, or hf: ORG/REPO to pull the folder from Hugging Face")
		return
	}
	if o.has("hf") {
		return
	}
	for _, f := range []string{"revision", "subfolder"} {
		if o.has(f) {
			d.add(o.keyAt(f), join(p, f), fmt.Sprintf("%s: is for models pulled from Hugging Face, but this entry has no hf:", f),
				fmt.Sprintf("add hf: ORG/REPO, or remove %s:", f))
			o.drop(f)
		}
	}
}

// modelSchemaRules mirrors modelObjectCheck in the JSON Schema: path or
// hf is required, and revision and subfolder need hf.
func modelSchemaRules(m map[string]any) {
	needsHF := func(f string) any {
		return map[string]any{
			"if":   map[string]any{"required": []string{f}},
			"then": map[string]any{"required": []string{"hf"}},
		}
	}
	m["anyOf"] = []any{
		map[string]any{"required": []string{"path"}},
		map[string]any{"required": []string{"hf"}},
	}
	m["allOf"] = []any{needsHF("revision"), needsHF("subfolder")}
}
