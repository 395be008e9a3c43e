package generators_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/testmodels"
	"github.com/kiln-dev/kiln/pipeline"
)

// batchManifest has generations that can share UNet calls (the three
// variations and the guided castle at 32×32, with other prompts and
// seeds), one that cannot (48×32) and one that is never batched
// (unguided: one row per call).
const batchManifest = `version: 1
assets:
  - {id: walls, kind: concept-art, model: sd, prompt: stone wall, seed: 7, steps: 3, guidance: 6, size: 32, concept: {variations: 3}}
  - {id: castle, kind: concept-art, model: sd, prompt: castle on a hill, negative_prompt: blurry, seed: 100, steps: 4, guidance: 5, size: 32}
  - {id: banner, kind: concept-art, model: sd, prompt: a red banner, seed: 5, steps: 3, guidance: 6, size: [48, 32]}
  - {id: ice, kind: concept-art, model: sd, prompt: ice, seed: 9, steps: 3, guidance: 1, size: 32}
`

// TestBuildBatchedSameBytes builds one project on the CPU with batching
// off and with runtime.batch: 4 (as many accelerator stages at once, as
// internal/project sets them): every published file has the same bytes,
// and the stages' cache keys are the same, so a batched build finds what
// an unbatched one cached.
func TestBuildBatchedSameBytes(t *testing.T) {
	build := func(root, config string, jobs int) (map[string][]byte, map[string]string) {
		t.Helper()
		writeFiles(t, root, map[string]string{manifests.ConfigFile: config})
		p, err := manifests.Load(root)
		if err != nil {
			t.Fatal(err)
		}
		ms := generators.NewModelSet(p.Config, root, models.RuntimeOptions{Library: ortLibrary(t), Threads: 1, CacheDir: t.TempDir()}, nil)
		defer ms.Close()
		stages, err := generators.Plan(p, &generators.Env{Models: ms, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := pipeline.Build(context.Background(), stages, pipeline.Options{Root: root, Jobs: 2, AccelJobs: jobs})
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]string{}
		for _, st := range rep.Stages {
			keys[st.ID] = st.Key + " " + string(st.Status)
		}
		files := map[string][]byte{}
		out := filepath.Join(root, "out")
		err = filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			rel, _ := filepath.Rel(out, path)
			files[rel] = data
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files, keys
	}
	plainRoot := project(t, testmodels.DiffusersLegacy, map[string]string{"a.kiln.yaml": batchManifest})
	batchRoot := project(t, testmodels.DiffusersLegacy, map[string]string{"a.kiln.yaml": batchManifest})
	want, wantKeys := build(plainRoot, kilnYAML, 1)
	got, gotKeys := build(batchRoot, kilnYAML+"runtime: {batch: 4}\n", generators.BatchSize(4, "cpu"))
	if len(want) < 6 || len(got) != len(want) {
		t.Fatalf("%d files batched, %d not", len(got), len(want))
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !bytes.Equal(got[name], want[name]) {
			t.Errorf("%s differs between the batched and the unbatched build", name)
		}
	}
	for id, k := range wantKeys {
		if gotKeys[id] != k {
			t.Errorf("stage %s: key and status %q batched, %q not", id, gotKeys[id], k)
		}
	}
	// The batched configuration finds the unbatched build's cache.
	_, again := build(plainRoot, kilnYAML+"runtime: {batch: 4}\n", 4)
	for id, k := range again {
		if st := k[len(k)-len(pipeline.StatusCached):]; st != string(pipeline.StatusCached) {
			t.Errorf("stage %s ran again with batching on: %s", id, k)
		}
	}
}

// TestModelSetBatch checks that model folders batch as runtime.batch says
// (off on the CPU unless set), and follow a changed kiln.yaml.
func TestModelSetBatch(t *testing.T) {
	root := project(t, testmodels.Optimum, nil)
	load := func(config string) *manifests.Config {
		writeFiles(t, root, map[string]string{manifests.ConfigFile: config})
		p, err := manifests.Load(root)
		if err != nil {
			t.Fatal(err)
		}
		return p.Config
	}
	ms := generators.NewModelSet(load(kilnYAML), root, models.RuntimeOptions{Library: ortLibrary(t), Threads: 1, CacheDir: t.TempDir()}, nil)
	defer ms.Close()
	batchOf := func() int {
		t.Helper()
		m, release, err := ms.Open(context.Background(), "sd", generators.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		b := m.(*models.Diffuser).Batcher()
		if b == nil {
			return 1
		}
		return b.Max()
	}
	if got := batchOf(); got != 1 {
		t.Errorf("batch %d on the CPU by default, want 1 (off)", got)
	}
	ms.(interface{ Update(*manifests.Config) }).Update(load(kilnYAML + "runtime: {batch: 3}\n"))
	if got := batchOf(); got != 3 {
		t.Errorf("batch %d after runtime.batch: 3", got)
	}
}
