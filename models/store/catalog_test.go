package store

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/internal/safepath"
)

const sumA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestParseCatalog(t *testing.T) {
	data := `version: 1
models:
  - name: tiny-turbo
    description: test
    kind: turbo
    url: https://example.org/ORG/REPO/resolve/0123abc
    files:
      - {path: unet/model.onnx, size: 10, sha256: ` + strings.ToUpper(sumA) + `}
      - {path: model_index.json, size: 2, sha256: ` + sumA + `}
  - name: sd15
    url: http://127.0.0.1:8080/models/sd15/
`
	c, err := ParseCatalog([]byte(data), "models.catalog.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Lookup("tiny-turbo")
	if err != nil {
		t.Fatal(err)
	}
	if e.URL != "https://example.org/ORG/REPO/resolve/0123abc/" || e.Kind != "turbo" || e.Pos != "models.catalog.yaml:3:5" {
		t.Errorf("entry = %+v", e)
	}
	if len(e.Files) != 2 || e.Files[0].Path != "model_index.json" || e.Files[1].SHA256 != sumA {
		t.Errorf("files not sorted and normalised: %+v", e.Files)
	}
	if got := strings.Join(c.Names(), ","); got != "sd15,tiny-turbo" {
		t.Errorf("names = %s", got)
	}
}

func TestParseCatalogErrors(t *testing.T) {
	const head = "version: 1\nmodels:\n"
	tests := []struct {
		name, data, want string
	}{
		{"no version", "models:\n  - {name: a, url: http://h/}\n", `cat.yaml: no "version"; add "version: 1" at the top`},
		{"future version", "version: 2\nmodels: []\n", "cat.yaml: catalogue version 2 is not supported; this kiln reads version 1"},
		{"no models", "version: 1\n", `cat.yaml: the catalogue lists no models; add entries under "models:"`},
		{"syntax", "version: 1\nmodels: [\n", "cat.yaml:2: did not find expected node content; fix the YAML syntax"},
		{"unknown field", head + "  - name: a\n    urll: http://h/\n", `invalid model catalogue: cat.yaml:4: unknown field "urll" (a catalogue has "version" and "models"; each model has name, description, kind, url and files)`},
		{"wrong type", head + "  - name: a\n    url: http://h/\n    files:\n      - {path: x, size: big, sha256: " + sumA + "}\n", `invalid model catalogue: cat.yaml:6: "big" is not a whole number (a catalogue has "version" and "models"; each model has name, description, kind, url and files)`},
		{"no name", head + "  - url: http://h/\n", `cat.yaml:3:5: model entry has no name; add "name:" (letters, digits, "_", "." and "-")`},
		{"bad name", head + "  - {name: ../x, url: http://h/}\n", `cat.yaml:3:5: model name "../x" is not valid; use letters, digits, "_", "." and "-", starting with a letter or digit`},
		{"duplicate", head + "  - {name: a, url: http://h/}\n  - {name: a, url: http://h/}\n", `cat.yaml:4:5: model "a" is already defined at cat.yaml:3:5; give each entry its own name`},
		{"bad kind", head + "  - {name: a, kind: sd3, url: http://h/}\n", `cat.yaml:3:5: model "a": kind "sd3" is not one of sd15, sd2, sdxl, lcm, turbo`},
		{"no url", head + "  - {name: a}\n", `cat.yaml:3:5: model "a" has no url; give the http(s) folder its files are fetched from`},
		{"relative url", head + "  - {name: a, url: models/a/}\n", `cat.yaml:3:5: model "a": url "models/a/" is not an http or https URL; give the absolute URL of the folder holding the model's files`},
		{"file url", head + "  - {name: a, url: 'file:///etc/'}\n", `cat.yaml:3:5: model "a": url "file:///etc/" is not an http or https URL`},
		{"bad hash", head + "  - name: a\n    url: http://h/\n    files: [{path: x, size: 1, sha256: abc}]\n", `cat.yaml:3:5: model "a": file "x": sha256 "abc" is not 64 hex digits; give the file's sha256 (sha256sum prints it)`},
		{"negative size", head + "  - name: a\n    url: http://h/\n    files: [{path: x, size: -1, sha256: " + sumA + "}]\n", `cat.yaml:3:5: model "a": file "x" has a negative size -1`},
		{"hostile path", head + "  - name: a\n    url: http://h/\n    files: [{path: ../../.bashrc, size: 1, sha256: " + sumA + "}]\n", `cat.yaml:3:5: model "a": file path "../../.bashrc" contains ".." and could leave the model folder; use a path inside the model folder without ".." elements`},
		{"file and folder", head + "  - name: a\n    url: http://h/\n    files: [{path: unet, size: 1, sha256: " + sumA + "}, {path: unet/model.onnx, size: 1, sha256: " + sumA + "}]\n", `cat.yaml:3:5: model "a": "unet" is listed as a file but "unet/model.onnx" is inside it; a path cannot be both a file and a folder`},
		{"listed twice", head + "  - name: a\n    url: http://h/\n    files: [{path: x, size: 1, sha256: " + sumA + "}, {path: x, size: 1, sha256: " + sumA + "}]\n", `cat.yaml:3:5: model "a": file "x" is listed twice; list each file once`},
		{"part collision", head + "  - name: a\n    url: http://h/\n    files: [{path: x, size: 1, sha256: " + sumA + "}, {path: x.part, size: 1, sha256: " + sumA + "}]\n", `cat.yaml:3:5: model "a": files "x" and "x.part" both listed: kiln keeps partial downloads as "x.part"; rename one`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCatalog([]byte(tt.data), "cat.yaml", nil)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n got  %v\n want %s", err, tt.want)
			}
		})
	}
}

func TestLoadCatalog(t *testing.T) {
	dir := t.TempDir()
	if _, ok := FindCatalog(dir); ok {
		t.Fatal("found a catalogue in an empty folder")
	}
	p, _ := FindCatalog(dir)
	_, err := LoadCatalog(p)
	if want := "model catalogue " + p + " does not exist; create it (see `kiln models pull --help` for the format) or pull a URL"; err == nil || err.Error() != want {
		t.Errorf("error = %v", err)
	}
	// JSON is YAML too.
	os.WriteFile(p, []byte(`{"version": 1, "models": [{"name": "a", "url": "https://example.org/a/"}]}`), 0o644)
	c, err := LoadCatalog(p)
	if err != nil || len(c.Models) != 1 || c.From != p {
		t.Fatalf("LoadCatalog: %+v, %v", c, err)
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"not JSON", "{\n  \"version\": 1,\n  oops\n}", `m.json: invalid kiln-manifest.json: line 3:3: invalid character 'o' looking for beginning of object key string; it must be a JSON object {"version": 1, "files": [{"path", "size", "sha256"}, ...]}`},
		{"wrong type", `{"version": 1, "files": [{"path": "x", "size": "big"}]}`, `m.json: invalid kiln-manifest.json: line 1:52: "files.size" must be a whole number, not a string`},
		{"no version", `{"files": []}`, `m.json: kiln-manifest.json has no "version"; add "version": 1`},
		{"future version", `{"version": 9, "files": []}`, "m.json: kiln-manifest.json is version 9, this kiln reads version 1; update kiln"},
		{"no files", `{"version": 1}`, "m.json: the model lists no files; list every file of the model folder with its size and sha256"},
		{"bad kind", `{"version": 1, "kind": "dalle", "files": [{"path": "x", "size": 1, "sha256": "` + sumA + `"}]}`, `m.json: kind "dalle" is not one of sd15, sd2, sdxl, lcm, turbo`},
		{"backslash", `{"version": 1, "files": [{"path": "unet\\model.onnx", "size": 1, "sha256": "` + sumA + `"}]}`, `m.json: file path "unet\\model.onnx" contains a backslash; use forward slashes (unet/model.onnx)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.data), "m.json")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n got  %v\n want %s", err, tt.want)
			}
		})
	}
	_, err := ParseManifest([]byte(`{"version": 1, "files": [{"path": "/etc/passwd", "size": 1, "sha256": "`+sumA+`"}]}`), "m.json")
	if !errors.Is(err, safepath.ErrUnsafe) {
		t.Errorf("a hostile path is not an ErrUnsafe: %v", err)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, modelDir, dir)
	os.WriteFile(filepath.Join(dir, ".DS_Store"), []byte("x"), 0o644)
	m, err := Record(context.Background(), dir, "tiny", "turbo")
	if err != nil {
		t.Fatal(err)
	}
	if !sameFiles(m.Files, modelManifest.Files) {
		t.Errorf("Record listed %v", m.Files)
	}
	back, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Name != "tiny" || back.Kind != "turbo" || back.Version != ManifestVersion || !sameFiles(back.Files, m.Files) {
		t.Errorf("read back %+v", back)
	}
	// Recording again does not list the manifest itself.
	again, err := BuildManifest(context.Background(), dir)
	if err != nil || !sameFiles(again.Files, m.Files) {
		t.Errorf("BuildManifest after Record: %v, %v", again, err)
	}
	if _, err := Record(context.Background(), dir, "tiny", "sd3"); err == nil {
		t.Error("Record accepted kind sd3")
	}
}

func TestNameAndURLs(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.org/ORG/tiny-sd/resolve/main/":     "tiny-sd",
		"https://example.org/ORG/tiny-sd/resolve/main/onnx": "tiny-sd",
		"http://127.0.0.1:80/models/sd15/":                  "sd15",
		"http://127.0.0.1/":                                 "",
	} {
		u, _ := url.Parse(in)
		if got := nameFromURL(u); got != want {
			t.Errorf("nameFromURL(%s) = %q, want %q", in, got, want)
		}
	}
	base, err := baseURL("https://example.org/a b/resolve/v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fileURL(base, "unet/model weights.onnx").String(); got != "https://example.org/a%20b/resolve/v1/unet/model%20weights.onnx" {
		t.Errorf("fileURL = %s", got)
	}
	if got := formatBytes(1536); got != "1.5 KiB" {
		t.Errorf("formatBytes(1536) = %s", got)
	}
	if got := formatBytes(3 << 30); got != "3.0 GiB" {
		t.Errorf("formatBytes(3 GiB) = %s", got)
	}
}

func TestBearerFor(t *testing.T) {
	auth := BearerFor("secret", "example.org")
	for host, want := range map[string]string{"example.org": "Bearer secret", "EXAMPLE.org:443": "Bearer secret", "evil.example": ""} {
		u, _ := url.Parse("https://" + host + "/x")
		req := &http.Request{URL: u, Header: http.Header{}}
		auth(req)
		if got := req.Header.Get("Authorization"); got != want {
			t.Errorf("%s: Authorization %q, want %q", host, got, want)
		}
	}
}
