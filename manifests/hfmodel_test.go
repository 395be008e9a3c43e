package manifests

import (
	"reflect"
	"strings"
	"testing"
)

// TestHFModels: models: entries pulled from Hugging Face decode into a
// Model with its HFSource, the folder defaulting to models/NAME.
func TestHFModels(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   map[string]*Model
	}{
		{"defaults", "version: 1\nmodels:\n  turbo: {hf: stabilityai/sd-turbo}\n", map[string]*Model{
			"turbo": {Name: "turbo", Path: "models/turbo", HF: &HFSource{Repo: "stabilityai/sd-turbo", Revision: "main", Pos: Pos{ConfigFile, 3, 15}}, Pos: Pos{ConfigFile, 3, 10}},
		}},
		{"every field", "version: 1\nmodels:\n  turbo: {hf: stabilityai/sd-turbo, revision: v1.0, subfolder: onnx/fp16, kind: turbo, path: models/t}\n", map[string]*Model{
			"turbo": {Name: "turbo", Path: "models/t", Kind: ModelTurbo,
				HF: &HFSource{Repo: "stabilityai/sd-turbo", Revision: "v1.0", Subfolder: "onnx/fp16", Pos: Pos{ConfigFile, 3, 15}}, Pos: Pos{ConfigFile, 3, 10}},
		}},
		{"block style beside a folder", "version: 1\nmodels:\n  sd:\n    hf: Org.Name/Repo_1\n    revision: refs/pr/3\n  own: models/own\n", map[string]*Model{
			"sd":  {Name: "sd", Path: "models/sd", HF: &HFSource{Repo: "Org.Name/Repo_1", Revision: "refs/pr/3", Pos: Pos{ConfigFile, 4, 9}}, Pos: Pos{ConfigFile, 4, 5}},
			"own": {Name: "own", Path: "models/own", Pos: Pos{ConfigFile, 6, 8}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustLoad(t, map[string]string{ConfigFile: tt.config}).Config.Models
			if !reflect.DeepEqual(got, tt.want) {
				for n, m := range got {
					t.Logf("%s: %+v hf %+v", n, m, m.HF)
				}
				t.Errorf("models differ from %+v", tt.want)
			}
		})
	}
}

func TestHFSourceRef(t *testing.T) {
	tests := []struct {
		src  HFSource
		want string
	}{
		{HFSource{Repo: "a/b", Revision: "main"}, "hf:a/b"},
		{HFSource{Repo: "a/b"}, "hf:a/b"},
		{HFSource{Repo: "a/b", Subfolder: "onnx", Revision: "v2"}, "hf:a/b/onnx@v2"},
	}
	for _, tt := range tests {
		if got := tt.src.Ref(); got != tt.want {
			t.Errorf("%+v.Ref() = %q, want %q", tt.src, got, tt.want)
		}
	}
}

// TestHFModelErrors: a bad hf:, revision: or subfolder: is reported at
// its file:line:col with what to write instead.
func TestHFModelErrors(t *testing.T) {
	tests := []struct {
		name  string
		entry string // the value of models.m
		want  string
	}{
		{"no repository owner", "{hf: sd-turbo}",
			`kiln.yaml:3:11: models.m.hf: hf: "sd-turbo" is not ORG/REPO (` + hfRepoHint + `)`},
		{"hf: prefix", "{hf: 'hf:a/b'}",
			`kiln.yaml:3:11: models.m.hf: hf: "hf:a/b" starts with "hf:" (write the repository alone, hf: a/b; revision: and subfolder: are fields of their own)`},
		{"URL", "{hf: 'https://huggingface.co/a/b'}",
			`kiln.yaml:3:11: models.m.hf: hf: "https://huggingface.co/a/b" is a URL, not a repository id (` + hfRepoHint + `)`},
		{"subfolder in the id", "{hf: a/b/onnx}",
			`kiln.yaml:3:11: models.m.hf: hf: "a/b/onnx" has more than one "/"; a folder inside the repository goes in subfolder: (` + hfRepoHint + `)`},
		{"bad characters", "{hf: 'a/b c'}",
			`kiln.yaml:3:11: models.m.hf: the repository name in hf: "a/b c" may hold only letters, digits, "-", "_" and "." (` + hfRepoHint + `)`},
		{"double dash", "{hf: a--x/b}",
			`kiln.yaml:3:11: models.m.hf: the owner in hf: "a--x/b" may not contain "--" or ".." (` + hfRepoHint + `)`},
		{"dataset", "{hf: datasets/b}",
			`kiln.yaml:3:11: models.m.hf: hf: "datasets/b" names a dataset repository, which holds no models (` + hfRepoHint + `)`},
		{"git suffix", "{hf: a/b.git}",
			`kiln.yaml:3:11: models.m.hf: hf: "a/b.git" ends in ".git" (` + hfRepoHint + `)`},
		{"not a string", "{hf: 12}",
			`kiln.yaml:3:11: models.m.hf: expected a string, got 12 (quote it: "12")`},
		{"revision with @", "{hf: a/b, revision: v1@x}",
			`kiln.yaml:3:26: models.m.revision: revision "v1@x" contains a space, a backslash, an "@" or a control character (name a branch, tag or commit of the repository, e.g. revision: main, revision: v1.0 or revision: refs/pr/3)`},
		{"revision with ..", "{hf: a/b, revision: a..b}",
			`kiln.yaml:3:26: models.m.revision: revision "a..b" contains ".." (name a branch, tag or commit of the repository, e.g. revision: main, revision: v1.0 or revision: refs/pr/3)`},
		{"empty revision", "{hf: a/b, revision: ''}",
			`kiln.yaml:3:26: models.m.revision: must not be empty (write a branch, tag or commit, or leave revision: out for main)`},
		{"subfolder leaves", "{hf: a/b, subfolder: ../x}",
			`kiln.yaml:3:27: models.m.subfolder: subfolder "../x" leaves the repository with ".." (a subfolder is relative to the repository's top and stays inside it)`},
		{"subfolder absolute", "{hf: a/b, subfolder: /onnx}",
			`kiln.yaml:3:27: models.m.subfolder: subfolder "/onnx" is absolute (use a path relative to the repository's top, e.g. onnx)`},
		{"subfolder not clean", "{hf: a/b, subfolder: onnx/./fp16}",
			`kiln.yaml:3:27: models.m.subfolder: subfolder "onnx/./fp16" is not in its simplest form (write subfolder: onnx/fp16)`},
		{"revision without hf", "{path: models/m, revision: main}",
			`kiln.yaml:3:23: models.m.revision: revision: is for models pulled from Hugging Face, but this entry has no hf: (add hf: ORG/REPO, or remove revision:)`},
		{"subfolder without hf", "{path: models/m, subfolder: onnx}",
			`kiln.yaml:3:23: models.m.subfolder: subfolder: is for models pulled from Hugging Face, but this entry has no hf: (add hf: ORG/REPO, or remove subfolder:)`},
		{"neither path nor hf", "{revision: main}",
			`kiln.yaml:3:6: models.m: missing required field "path" (add path: models/NAME or path: builtin:exemplar, or hf: ORG/REPO to pull the folder from Hugging Face)`},
		{"hf into a built-in", "{hf: a/b, path: 'builtin:exemplar'}",
			`kiln.yaml:3:22: models.m.path: path "builtin:exemplar" cannot be combined with hf: (a built-in model has no files to pull; remove hf: (and revision:, subfolder:), or give the folder to pull into, e.g. path: models/NAME)`},
		{"hf path outside", "{hf: a/b, path: ../m}",
			`kiln.yaml:3:22: models.m.path: path "../m" leaves the project with ".." (paths are relative to the project root and stay inside it; kiln reads models from inside the project)`},
		{"unknown field", "{hf: a/b, revison: main}",
			`kiln.yaml:3:16: models.m.revison: unknown field "revison" (did you mean "revision"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errLines(t, map[string]string{ConfigFile: "version: 1\nmodels:\n  m: " + tt.entry + "\n"})
			if strings.Join(got, "\n") != tt.want {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

// TestHFModelSchema: the schema accepts what the parser accepts and
// rejects an entry without path or hf, or revision without hf.
func TestHFModelSchema(t *testing.T) {
	cv := newValidator(t, ConfigSchema())
	for _, doc := range []string{
		"version: 1\nmodels:\n  turbo: {hf: stabilityai/sd-turbo, revision: main, subfolder: onnx, kind: turbo}\n",
		"version: 1\nmodels:\n  turbo: {hf: stabilityai/sd-turbo, path: models/t}\n",
	} {
		if errs := cv.check(t, doc); len(errs) > 0 {
			t.Errorf("schema rejects\n%s%s", doc, strings.Join(errs, "\n"))
		}
		mustLoad(t, map[string]string{ConfigFile: doc})
	}
	for _, doc := range []string{
		"version: 1\nmodels:\n  turbo: {kind: turbo}\n",
		"version: 1\nmodels:\n  turbo: {path: models/t, revision: main}\n",
		"version: 1\nmodels:\n  turbo: {path: models/t, subfolder: onnx}\n",
		"version: 1\nmodels:\n  turbo: {hf: sd-turbo}\n",
	} {
		if errs := cv.check(t, doc); len(errs) == 0 {
			t.Errorf("schema accepts\n%s", doc)
		}
		if errLines(t, map[string]string{ConfigFile: doc}) == nil {
			t.Errorf("kiln accepts\n%s", doc)
		}
	}
}
