package store

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

const fuzzSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// FuzzParseManifest feeds arbitrary bytes to the kiln-manifest.json
// reader, which reads what a model server sends. It must never panic;
// every error must name the source; an accepted manifest lists only safe,
// unique paths and reads back the same after Encode.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"name":"tiny","kind":"turbo","files":[{"path":"model_index.json","size":5,"sha256":"` + fuzzSHA + `"},{"path":"unet/model.onnx","size":0,"sha256":"` + strings.ToUpper(fuzzSHA) + `"}]}`))
	f.Add([]byte(`{"version":1,"files":[{"path":"../etc/passwd","size":1,"sha256":"` + fuzzSHA + `"}]}`))
	f.Add([]byte(`{"version":1,"files":[{"path":"a","size":1,"sha256":"` + fuzzSHA + `"},{"path":"a/b","size":1,"sha256":"` + fuzzSHA + `"}]}`))
	f.Add([]byte(`{"version":1,"files":[{"path":"C:\\x","size":-1}]}`))
	f.Add([]byte(`{"version": "1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data, "srv/kiln-manifest.json")
		if err != nil {
			if m != nil || !strings.HasPrefix(err.Error(), "srv/kiln-manifest.json") {
				t.Fatalf("manifest %v with error %q (errors name the source)", m, err)
			}
			return
		}
		checkAccepted(t, m.Files)
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		m2, err := ParseManifest(enc, "again")
		if err != nil {
			t.Fatalf("encoded manifest does not parse: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(m.Files, m2.Files) {
			t.Fatalf("files changed across Encode: %v != %v", m.Files, m2.Files)
		}
	})
}

// FuzzParseCatalog feeds arbitrary bytes to the model catalogue reader
// (YAML, possibly served over HTTP). It must never panic; every error must
// name the source; accepted entries have unique names, http(s) base URLs
// ending in "/" and safe file paths.
func FuzzParseCatalog(f *testing.F) {
	f.Add([]byte("version: 1\nmodels:\n  - name: tiny-turbo\n    kind: turbo\n    url: https://example.org/m/\n    files:\n      - {path: model_index.json, size: 5, sha256: " + fuzzSHA + "}\n  - name: sd15\n    url: ../sd15/\n"))
	f.Add([]byte("version: 1\nmodels:\n  - &a {name: a, url: 'x'}\n  - *a\n"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n"))
	f.Add([]byte(`{"version": 1, "models": [{"name": "j", "url": "file:///etc/"}]}`))
	base, err := url.Parse("https://models.invalid/catalog/models.catalog.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range []*url.URL{nil, base} {
			c, err := ParseCatalog(data, "models.catalog.yaml", b)
			if err != nil {
				if c != nil || !strings.Contains(err.Error(), "models.catalog.yaml") {
					t.Fatalf("catalogue %v with error %q (errors name the source)", c, err)
				}
				continue
			}
			seen := map[string]bool{}
			for _, e := range c.Models {
				if seen[e.Name] || !validName(e.Name) {
					t.Fatalf("accepted name %q (repeated or invalid)", e.Name)
				}
				seen[e.Name] = true
				u, err := url.Parse(e.URL)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.HasSuffix(u.Path, "/") {
					t.Fatalf("accepted url %q", e.URL)
				}
				checkAccepted(t, e.Files)
			}
		}
	})
}

// checkAccepted fails unless every path passes checkPath and is listed
// once.
func checkAccepted(t *testing.T, files []File) {
	t.Helper()
	seen := map[string]bool{}
	for _, fl := range files {
		if err := checkPath(fl.Path); err != nil || seen[fl.Path] || fl.Size < 0 {
			t.Fatalf("accepted file %+v (err %v, repeated %v)", fl, err, seen[fl.Path])
		}
		seen[fl.Path] = true
	}
}
