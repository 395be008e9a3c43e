package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/models/store"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// slowWriter hands a response over in small pieces with a pause after
// each, so a pull of a small model lasts long enough to be killed at many
// different moments.
type slowWriter struct {
	http.ResponseWriter
	pause time.Duration
}

func (w slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 4096)
		m, err := w.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(w.pause)
		p = p[k:]
	}
	return n, nil
}

// modelServer serves model folders as a model host does: each under
// /NAME/ with its kiln-manifest.json, files with range requests (for
// resuming), slowly.
func modelServer(t *testing.T, folders map[string]string, pause time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, rel, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		dir := folders[name]
		if !ok || dir == "" || strings.Contains(rel, "..") {
			http.NotFound(w, r)
			return
		}
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(slowWriter{w, pause}, r, rel, fi.ModTime(), f)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// servedModel writes a tiny model folder (weights seeded by seed) with a
// kiln-manifest.json naming it "tiny", and returns the folder and its
// manifest.
func servedModel(t *testing.T, seed uint64) (string, *store.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := testmodels.Write(dir, testmodels.Turbo, testmodels.Options{Seed: seed}); err != nil {
		t.Fatal(err)
	}
	m, err := store.BuildManifest(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Name, m.Kind = "tiny", "turbo"
	if err := store.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// folderState says what a model folder holds: "absent", "A" or "B" (the
// complete model of that manifest, nothing missing, nothing extra), or a
// description of what is wrong.
func folderState(dir string, versions map[string]*store.Manifest) string {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return "absent"
	}
	got := snapshotAll(dir)
	for name, m := range versions {
		if len(got) != len(m.Files)+1 {
			continue
		}
		ok := got[store.ManifestName] != ""
		for _, f := range m.Files {
			ok = ok && got[f.Path] == f.SHA256
		}
		if ok {
			return name
		}
	}
	var files []string
	for rel := range got {
		files = append(files, rel)
	}
	return "incomplete or mixed: " + strings.Join(files, ", ")
}

// snapshotAll hashes every regular file under dir by slash-separated
// relative path; an unreadable tree gives nil.
func snapshotAll(dir string) map[string]string {
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(data)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		return nil
	}
	return out
}

// TestKillDuringPull SIGKILLs kiln models pull at random moments, first
// while a model is pulled for the first time, then while it is replaced
// by a new version (--replace). After every kill the model folder is
// absent or the complete first version (first phase), or the complete old
// or new version (second phase): never half there. Pulls resume what
// killed ones downloaded, and the last one finishes with no staging or
// old folder left behind.
func TestKillDuringPull(t *testing.T) {
	t.Parallel()
	kills := 8
	if testing.Short() {
		kills = 3
	}
	dirA, manA := servedModel(t, 1)
	dirB, manB := servedModel(t, 2)
	srv := modelServer(t, map[string]string{"a": dirA, "b": dirB}, 8*time.Millisecond)
	p := t.TempDir()
	writeFiles(t, p, map[string]string{"kiln.yaml": "version: 1\n"})
	dest := filepath.Join(p, "models", "tiny")
	versions := map[string]*store.Manifest{"A": manA, "B": manB}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))

	pull := func(args ...string) *exec.Cmd {
		cmd := exec.Command(kilnBin, append([]string{"models", "pull", "-q", "-C", p}, args...)...)
		return cmd
	}
	// run starts a pull and kills it after a random delay up to limit;
	// it reports whether the pull finished first.
	run := func(limit time.Duration, args ...string) (finished bool, took time.Duration) {
		cmd := pull(args...)
		out := &strings.Builder{}
		cmd.Stderr = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("pull %v failed by itself: %v\n%s", args, err, out)
			}
			return true, time.Since(began)
		case <-time.After(time.Duration(rng.Int64N(int64(limit)))):
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			return false, time.Since(began)
		}
	}

	// How long a whole pull takes here.
	ref := t.TempDir()
	writeFiles(t, ref, map[string]string{"kiln.yaml": "version: 1\n"})
	start := time.Now()
	if out, err := exec.Command(kilnBin, "models", "pull", "-q", "-C", ref, srv.URL+"/a/").CombinedOutput(); err != nil {
		t.Fatalf("reference pull: %v\n%s", err, out)
	}
	full := time.Since(start)
	t.Logf("a whole pull takes %v here", full)

	var log []string
	check := func(phase, k int, took time.Duration, allowed ...string) {
		t.Helper()
		state := folderState(dest, versions)
		for _, a := range allowed {
			if state == a {
				return
			}
		}
		t.Fatalf("phase %d, pull %d stopped after %v: the model folder is %s, want one of %v", phase, k, took, state, allowed)
	}
	// Phase 1: the first pull of A, killed until one finishes.
	for k := 1; k <= kills; k++ {
		finished, took := run(full+full/4, srv.URL+"/a/")
		check(1, k, took, "absent", "A")
		if finished {
			log = append(log, "done")
			break
		}
		log = append(log, took.Round(time.Millisecond).String())
	}
	if finished, _ := run(time.Hour, srv.URL+"/a/"); !finished || folderState(dest, versions) != "A" {
		t.Fatalf("the first pull did not finish with A: %s", folderState(dest, versions))
	}
	// Phase 2: replacing it with B or back with A, killed at random
	// moments: the folder is always one whole version.
	log = append(log, "|")
	for k := 1; k <= 2*kills; k++ {
		// Mostly the version the folder does not hold, so there is a
		// replace to interrupt.
		target := map[string]string{"A": "/b/", "B": "/a/"}[folderState(dest, versions)]
		if rng.IntN(5) == 0 {
			target = []string{"/a/", "/b/"}[rng.IntN(2)]
		}
		url := srv.URL + target
		finished, took := run(full+full/4, "--replace", url)
		check(2, k, took, "A", "B")
		if finished {
			log = append(log, "done")
		} else {
			log = append(log, took.Round(time.Millisecond).String())
		}
	}
	// Two whole replaces (one of them does work whatever the folder
	// holds) leave nothing behind.
	for _, v := range []string{"a", "b"} {
		if finished, _ := run(time.Hour, "--replace", srv.URL+"/"+v+"/"); !finished || folderState(dest, versions) != strings.ToUpper(v) {
			t.Fatalf("the pull of %s did not finish with it: %s", v, folderState(dest, versions))
		}
	}
	for _, leftover := range []string{dest + store.StagingSuffix, dest + ".kiln-old"} {
		if _, err := os.Lstat(leftover); err == nil {
			t.Errorf("%s is left behind", leftover)
		}
	}
	t.Logf("pulls killed after: %s", strings.Join(log, " "))
}
