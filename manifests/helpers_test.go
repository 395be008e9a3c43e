package manifests

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// baseConfig is the kiln.yaml of most tests.
const baseConfig = `version: 1
models:
  exemplar: builtin:exemplar
  sd15: {path: models/sd15, kind: sd15}
defaults:
  model: exemplar
`

// project builds an in-memory project. A missing kiln.yaml gets baseConfig;
// an empty string value removes a file.
func project(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	if _, ok := files[ConfigFile]; !ok {
		fsys[ConfigFile] = &fstest.MapFile{Data: []byte(baseConfig)}
	}
	for name, data := range files {
		if data == "" {
			delete(fsys, name)
			continue
		}
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}

// errLines loads files and returns the error lines (nil on success).
func errLines(t testing.TB, files map[string]string) []string {
	t.Helper()
	_, err := LoadFS(project(files))
	if err == nil {
		return nil
	}
	var list ErrorList
	if !errors.As(err, &list) {
		return []string{"NOT AN ErrorList: " + err.Error()}
	}
	return strings.Split(list.Error(), "\n")
}

func mustLoad(t testing.TB, files map[string]string) *Project {
	t.Helper()
	p, err := LoadFS(project(files))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}
