package models

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// runScale runs a scale model on [1,4] and checks the result.
func runScale(t testing.TB, s *Session, factor float32) {
	t.Helper()
	x, err := ort.NewTensor(ort.NewShape(1, 4), []float32{1, 2, 3, 4})
	if err != nil {
		t.Error(err)
		return
	}
	defer x.Destroy()
	y, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, 4))
	defer y.Destroy()
	if err := s.Run(context.Background(), []ort.Value{x}, []ort.Value{y}); err != nil {
		t.Error(err)
		return
	}
	if got := y.GetData()[3]; got != 4*factor {
		t.Errorf("%s: y[3] = %v, want %v", s.Key().Path, got, 4*factor)
	}
}

func keyNames(keys []PoolKey) string {
	var s []string
	for _, k := range keys {
		s = append(s, filepath.Base(filepath.Dir(k.Path))+k.Variant)
	}
	return fmt.Sprint(s)
}

func TestPoolReuse(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	path := filepath.Join(t.TempDir(), "a", "model.onnx")
	writeScaleModel(t, path, 2, 0)
	ctx := context.Background()
	s1, err := rt.Acquire(ctx, SessionSpec{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	runScale(t, s1, 2)
	s1.Release()
	s1.Release() // a second release is a no-op
	s2, err := rt.Acquire(ctx, SessionSpec{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Release()
	if s1.e != s2.e {
		t.Error("second Acquire created a new session")
	}
	// A variant or an output selection is a different session.
	s3, err := rt.Acquire(ctx, SessionSpec{Path: path, Variant: "circular"})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Release()
	s4, err := rt.Acquire(ctx, SessionSpec{Path: path, Outputs: []string{"y"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s4.Release()
	if _, err := rt.Acquire(ctx, SessionSpec{Path: path, Outputs: []string{"z"}}); err == nil || err.Error() != path+` has no output "z" (it has y)` {
		t.Errorf("unknown output: %v", err)
	}
	st := rt.Stats()
	if st.Loads != 3 || st.Hits != 1 || st.Loaded != 3 || st.InUse != 3 {
		t.Errorf("stats %+v, want 3 loads, 1 hit, 3 loaded and in use", st)
	}
	if got := keyNames(rt.PooledSessions()); got != "[a|outputs=y acircular a]" {
		t.Errorf("pooled sessions %s", got)
	}
}

func TestPoolLRUEviction(t *testing.T) {
	rt0 := newTestRuntime(t, RuntimeOptions{})
	dir := t.TempDir()
	const pad = 64 << 10
	paths := map[string]string{}
	for i, n := range []string{"a", "b", "c", "d"} {
		p := filepath.Join(dir, n, "model.onnx")
		writeScaleModel(t, p, float32(i+1), pad)
		// An external weights file beside the graph counts towards its size.
		os.WriteFile(filepath.Join(dir, n, "weights.pb"), make([]byte, pad), 0o644)
		os.WriteFile(filepath.Join(dir, n, "config.json"), make([]byte, 10*pad), 0o644)
		paths[n] = p
	}
	size := estimateModelBytes(paths["a"], "")
	if fi, _ := os.Stat(paths["a"]); size != fi.Size()+pad {
		t.Fatalf("estimate %d, want model %d + weights %d", size, fi.Size(), pad)
	}
	rt0.Close()

	// Room for two sessions and a half.
	rt := newTestRuntime(t, RuntimeOptions{MemoryBudget: size*5/2 + 1})
	ctx := context.Background()
	use := func(n string) {
		s, err := rt.Acquire(ctx, SessionSpec{Path: paths[n]})
		if err != nil {
			t.Fatal(err)
		}
		runScale(t, s, float32(n[0]-'a'+1))
		s.Release()
	}
	use("a")
	use("b")
	use("a") // a is now the most recently used
	use("c") // evicts b, the least recently used
	if got := keyNames(rt.PooledSessions()); got != "[c a]" {
		t.Errorf("after a,b,a,c: pooled %s, want [c a]", got)
	}
	if st := rt.Stats(); st.Evictions != 1 || st.Loads != 3 || st.Bytes != 2*size {
		t.Errorf("stats %+v", st)
	}

	// A session in use is never evicted, even when it is the least
	// recently used: hold a, then load b and d.
	held, err := rt.Acquire(ctx, SessionSpec{Path: paths["a"]})
	if err != nil {
		t.Fatal(err)
	}
	use("b") // evicts c (idle), keeps a (held)
	use("d") // evicts b, keeps a
	if got := keyNames(rt.PooledSessions()); got != "[d a]" {
		t.Errorf("pooled %s, want [d a]", got)
	}
	runScale(t, held, 1)
	held.Release()

	// Budget exceeded only by sessions in use: nothing idle to evict, so
	// the pool grows past the budget until they are released.
	var hold []*Session
	for _, n := range []string{"a", "b", "c"} {
		s, err := rt.Acquire(ctx, SessionSpec{Path: paths[n]})
		if err != nil {
			t.Fatal(err)
		}
		hold = append(hold, s)
	}
	if st := rt.Stats(); st.InUse != 3 || st.Bytes <= st.Budget {
		t.Errorf("stats %+v, want 3 in use over budget", st)
	}
	for _, s := range hold {
		runScale(t, s, float32(s.Key().Path[len(dir)+1]-'a'+1))
		s.Release()
	}
}

func TestPoolConcurrent(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := 0; i < 4; i++ {
		p := filepath.Join(dir, fmt.Sprint(i), "model.onnx")
		writeScaleModel(t, p, float32(i+1), 16<<10)
		paths = append(paths, p)
	}
	size := estimateModelBytes(paths[0], "")
	rt := newTestRuntime(t, RuntimeOptions{MemoryBudget: 2 * size})

	// Many goroutines acquiring one fresh key share a single load.
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := rt.Acquire(context.Background(), SessionSpec{Path: paths[0]})
			if err != nil {
				t.Error(err)
				return
			}
			runScale(t, s, 1)
			s.Release()
		}()
	}
	wg.Wait()
	if st := rt.Stats(); st.Loads != 1 {
		t.Errorf("8 concurrent acquires of one model loaded it %d times", st.Loads)
	}

	// Mixed keys under a tight budget: evictions and reloads race with
	// runs; every run must still see its own model.
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 12; i++ {
				k := (g + i) % len(paths)
				s, err := rt.Acquire(context.Background(), SessionSpec{Path: paths[k]})
				if err != nil {
					t.Error(err)
					return
				}
				runScale(t, s, float32(k+1))
				s.Release()
			}
		}(g)
	}
	wg.Wait()
	st := rt.Stats()
	if st.InUse != 0 || st.Bytes > st.Budget {
		t.Errorf("after the storm: %+v", st)
	}
	t.Logf("concurrent pool: %d loads, %d hits, %d evictions", st.Loads, st.Hits, st.Evictions)
}

func TestPoolClose(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	path := filepath.Join(t.TempDir(), "a", "model.onnx")
	writeScaleModel(t, path, 2, 0)
	s, err := rt.Acquire(context.Background(), SessionSpec{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
	// The held session keeps working until released.
	runScale(t, s, 2)
	s.Release()
	if _, err := rt.Acquire(context.Background(), SessionSpec{Path: path}); err == nil || err.Error() != "ONNX Runtime session pool is closed" {
		t.Errorf("Acquire after Close: %v", err)
	}
}
