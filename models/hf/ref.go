package hf

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is the prefix of a Hugging Face model reference, as in
// "hf:stabilityai/sd-turbo".
const Scheme = "hf:"

// DefaultRevision is the revision a reference without "@REVISION" names,
// the Hub's default branch.
const DefaultRevision = "main"

// Ref names a folder of a model repository on the Hub at a revision: what
// `kiln models pull hf:ORG/REPO[/SUBFOLDER][@REVISION]` is given.
type Ref struct {
	// Repo is the repository id, "ORG/REPO".
	Repo string
	// Subfolder is the slash-separated folder inside the repository
	// holding the model (model_index.json and the component folders), ""
	// for the repository's root.
	Subfolder string
	// Revision is a branch, tag or commit; ParseRef sets DefaultRevision
	// when the reference names none.
	Revision string
}

// String spells r the way ParseRef reads it; the revision is left out
// when it is DefaultRevision.
func (r Ref) String() string {
	var b strings.Builder
	b.WriteString(Scheme)
	b.WriteString(r.Repo)
	if r.Subfolder != "" {
		b.WriteString("/")
		b.WriteString(r.Subfolder)
	}
	if r.Revision != "" && r.Revision != DefaultRevision {
		b.WriteString("@")
		b.WriteString(r.Revision)
	}
	return b.String()
}

// IsRef reports whether s is spelled as a Hugging Face reference (starts
// with "hf:"), so a caller can choose between ParseRef and its other
// sources before parsing.
func IsRef(s string) bool {
	return strings.HasPrefix(s, Scheme)
}

// refExample ends every parse error so the user sees the expected form.
const refExample = "write hf:ORG/REPO, hf:ORG/REPO/SUBFOLDER or hf:ORG/REPO@REVISION (for example hf:stabilityai/sd-turbo or hf:runwayml/stable-diffusion-v1-5@onnx)"

// ParseRef reads "hf:ORG/REPO[/SUBFOLDER][@REVISION]". ORG and REPO
// follow the Hub's rules for repository ids (letters, digits, "-", "_"
// and ".", not starting or ending with "-" or ".", no "--" or "..", at
// most 96 characters, REPO not ending in ".git"); SUBFOLDER is a relative
// folder without "." or ".." elements (a trailing "/" is dropped);
// REVISION, everything after the first "@", is a branch, tag or commit
// such as "main", "v1.0", "refs/pr/3" or a commit sha. The errors say
// what is wrong and how to spell it.
func ParseRef(s string) (Ref, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return Ref{}, fmt.Errorf("%q is not a Hugging Face reference: %s", s, refExample)
	}
	if strings.HasPrefix(rest, "//") {
		return Ref{}, fmt.Errorf("%q: kiln's references have no \"//\" and put the revision last: %s", s, refExample)
	}
	bad := func(format string, args ...any) (Ref, error) {
		return Ref{}, fmt.Errorf("%q: %s; %s", s, fmt.Sprintf(format, args...), refExample)
	}
	if rest == "" {
		return bad("no repository given")
	}
	if strings.ContainsAny(rest, "\\ \t\r\n") || strings.ContainsFunc(rest, isControl) {
		return bad("contains a backslash, a space or a control character")
	}
	where, rev, hasRev := strings.Cut(rest, "@")
	if hasRev {
		if err := checkRevision(rev); err != nil {
			return bad("%v", err)
		}
	} else {
		rev = DefaultRevision
	}
	where = strings.TrimRight(where, "/")
	parts := strings.Split(where, "/")
	if len(parts) < 2 {
		if where == "" {
			return bad("no repository given")
		}
		return bad("the repository must be ORG/REPO, with its owner (user or organisation) first")
	}
	switch parts[0] {
	case "datasets", "spaces", "kernels":
		return bad("%s repositories hold no models; name a model repository", strings.TrimSuffix(parts[0], "s"))
	}
	repo := parts[0] + "/" + parts[1]
	if err := checkRepoID(parts[0], parts[1]); err != nil {
		return bad("%v", err)
	}
	sub := parts[2:]
	for _, e := range sub {
		switch e {
		case "":
			return bad("the subfolder has an empty element (\"//\")")
		case ".", "..":
			return bad("the subfolder may not contain %q", e)
		}
	}
	return Ref{Repo: repo, Subfolder: strings.Join(sub, "/"), Revision: rev}, nil
}

// checkRepoID applies the Hub's repository id rules (huggingface_hub's
// validate_repo_id) to the owner and the name.
func checkRepoID(owner, name string) error {
	for _, p := range []struct{ what, v string }{{"owner", owner}, {"repository name", name}} {
		switch {
		case p.v == "":
			return fmt.Errorf("the %s is empty", p.what)
		case len(p.v) > 96:
			return fmt.Errorf("the %s is longer than 96 characters", p.what)
		case strings.ContainsFunc(p.v, func(r rune) bool { return !isIDChar(r) }):
			return fmt.Errorf("the %s %q may contain only letters, digits, \"-\", \"_\" and \".\"", p.what, p.v)
		case strings.HasPrefix(p.v, "-") || strings.HasPrefix(p.v, ".") || strings.HasSuffix(p.v, "-") || strings.HasSuffix(p.v, "."):
			return fmt.Errorf("the %s %q may not start or end with \"-\" or \".\"", p.what, p.v)
		case strings.Contains(p.v, "--") || strings.Contains(p.v, ".."):
			return fmt.Errorf("the %s %q may not contain \"--\" or \"..\"", p.what, p.v)
		}
	}
	if strings.HasSuffix(name, ".git") {
		return errors.New("the repository name may not end in \".git\" (name the repository, not its git URL)")
	}
	return nil
}

// checkRevision rejects revisions no branch, tag or commit can be spelled
// as.
func checkRevision(rev string) error {
	switch {
	case rev == "":
		return errors.New("the revision after \"@\" is empty")
	case strings.Contains(rev, "@"):
		return errors.New("the reference has more than one \"@\"")
	case strings.Contains(rev, ".."):
		return fmt.Errorf("the revision %q may not contain \"..\"", rev)
	case strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.Contains(rev, "//"):
		return fmt.Errorf("the revision %q has an empty path element", rev)
	case strings.HasPrefix(rev, "-"):
		return fmt.Errorf("the revision %q may not start with \"-\"", rev)
	}
	return nil
}

func isIDChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.'
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
