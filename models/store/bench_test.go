package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// syntheticSource serves files of the given sizes (random bytes) from s
// and returns a Source for them.
func syntheticSource(t testing.TB, s *modelServer, sizes map[string]int) *Source {
	t.Helper()
	src := &Source{Name: "synthetic", BaseURL: s.base(), From: "test"}
	r := rand.New(rand.NewPCG(1, 2))
	for name, n := range sizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		sum := sha256.Sum256(data)
		s.mu.Lock()
		s.override[name] = data
		s.mu.Unlock()
		src.Files = append(src.Files, File{Path: name, Size: int64(n), SHA256: hex.EncodeToString(sum[:])})
	}
	return src
}

// TestDownloadEmptyFile: an empty file needs no request and still has its
// hash checked.
func TestDownloadEmptyFile(t *testing.T) {
	s := newModelServer(t)
	src := syntheticSource(t, s, map[string]int{"empty.txt": 0, "data/x.bin": 1000})
	dest := filepath.Join(t.TempDir(), "synthetic")
	if _, err := Download(context.Background(), &bytes.Buffer{}, src, dest, PullOptions{RetryDelay: -1}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dest, "empty.txt")); err != nil || st.Size() != 0 {
		t.Errorf("empty file: %v, %v", st, err)
	}
	if reqs := s.requestsFor("empty.txt"); len(reqs) != 0 {
		t.Errorf("requested the empty file: %v", reqs)
	}
}

// BenchmarkPull measures a pull of one 32 MiB file over loopback: HTTP,
// hashing, writing, flushing and the rename into place.
func BenchmarkPull(b *testing.B) {
	s := newModelServer(b)
	const size = 32 << 20
	src := syntheticSource(b, s, map[string]int{"weights.bin": size})
	root := b.TempDir()
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		dest := filepath.Join(root, fmt.Sprint(i))
		if _, err := Download(context.Background(), &bytes.Buffer{}, src, dest, PullOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dest)
		b.StartTimer()
	}
}

// BenchmarkVerify measures verifying a folder holding one 32 MiB file
// (dominated by sha256).
func BenchmarkVerify(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "m")
	os.MkdirAll(dir, 0o755)
	data := bytes.Repeat([]byte{1, 2, 3, 4}, 8<<20)
	os.WriteFile(filepath.Join(dir, "weights.bin"), data, 0o644)
	sum := sha256.Sum256(data)
	WriteManifest(dir, &Manifest{Files: []File{{Path: "weights.bin", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}}})
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		r := VerifyModel(context.Background(), LocalModel{Name: "m", Dir: dir}, VerifyOptions{})
		if r.Files != 1 {
			b.Fatalf("%+v", r)
		}
	}
}
