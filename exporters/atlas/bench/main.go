// Command bench compares kiln's atlas packer with the npm packers
// maxrects-packer and free-tex-packer-core on the benchmark sets (uniform
// sizes, mixed small and large, long thin strips, 1,500 small sprites,
// power-of-two sizes) and prints a Markdown table of occupancy (sprite area
// ÷ page area) and time.
//
// Usage:
//
//	go run ./exporters/atlas/bench [-timeout 120] [-peers=false] [-all]
//
// It installs the peers itself (npm ci into exporters/atlas/bench, skipped
// when the installed lock file is unchanged) and runs bench/peers.cjs on
// the same sets, which it writes to a temporary JSON file. Every packer gets
// the same sizes, page limit (2048), 2 pixels between sprites and 1 at the
// page edge, no rotation, trimming or de-duplication. Time is reported as
// process CPU time per run (user + system, all threads) and as wall time,
// each the median over timed blocks; CPU time is the fairer number on a
// busy machine. kiln is measured before and after the peers.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kiln-dev/kiln/exporters/atlas"
	"github.com/kiln-dev/kiln/exporters/atlas/internal/benchset"
)

// result is one packer configuration's outcome on one set, as peers.cjs
// prints it.
type result struct {
	Set       string         `json:"set"`
	Packer    string         `json:"packer"`
	Options   map[string]any `json:"options"`
	OK        bool           `json:"ok"`
	Occupancy float64        `json:"occupancy"`
	Pages     int            `json:"pages"`
	Ms        float64        `json:"ms"`
	CPUMs     float64        `json:"cpuMs"`
	Runs      int            `json:"runs"`
	Note      string         `json:"note"`

	// blockMs and blockCPU keep kiln's per-block times, so measurements
	// taken before and after the peers can be pooled.
	blockMs, blockCPU []float64
}

func main() {
	timeout := flag.Int("timeout", 120, "seconds before a peer configuration is given up")
	peers := flag.Bool("peers", true, "run the npm peers (needs node and npm)")
	all := flag.Bool("all", false, "also list every peer configuration")
	dir := flag.String("dir", "", "folder holding peers.cjs and package.json (default: next to this source file)")
	flag.Parse()
	if err := run(*dir, *peers, *all, *timeout, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(dir string, withPeers, all bool, timeout int, out io.Writer) error {
	sets := benchset.All()
	// kiln is measured before and after the peers (three blocks each) and
	// the blocks are pooled, so both see the machine's load alike.
	measure := func(kiln []result) ([]result, error) {
		for i, s := range sets {
			r, err := measureKiln(s, 3)
			if err != nil {
				return nil, err
			}
			if kiln == nil || len(kiln) <= i {
				kiln = append(kiln, r)
			} else {
				k := &kiln[i]
				k.blockMs = append(k.blockMs, r.blockMs...)
				k.blockCPU = append(k.blockCPU, r.blockCPU...)
				k.Runs += r.Runs
				k.Ms, k.CPUMs = median(k.blockMs), median(k.blockCPU)
			}
			fmt.Fprintf(os.Stderr, "%s kiln %.4f %.2f ms cpu\n", s.Name, r.Occupancy, r.CPUMs)
		}
		return kiln, nil
	}
	kiln, err := measure(nil)
	if err != nil {
		return err
	}
	var peers []result
	if withPeers {
		if dir == "" {
			dir, err = sourceDir()
			if err != nil {
				return err
			}
		}
		peers, err = runPeers(dir, sets, timeout)
		if err != nil {
			return err
		}
		if kiln, err = measure(kiln); err != nil {
			return err
		}
	}
	printTable(out, sets, kiln, peers, all)
	return nil
}

// sourceDir finds the bench folder from this file's compiled-in path.
func sourceDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		d := filepath.Dir(file)
		if _, err := os.Stat(filepath.Join(d, "peers.cjs")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("cannot find the bench folder (peers.cjs); pass -dir exporters/atlas/bench")
}

// measureKiln packs a set with kiln's default settings ("best"), timed
// like peers.cjs times the peers: at least 5 warm-up runs and 200 ms, then
// blocks of at least 3 runs and 100 ms, reduced to the median block.
func measureKiln(s benchset.Set, blocks int) (result, error) {
	sizes := make([]image.Point, len(s.Sizes))
	for i, wh := range s.Sizes {
		sizes[i] = image.Pt(wh[0], wh[1])
	}
	settings := atlas.Settings{MaxSize: s.MaxSize, Padding: s.Padding, Border: s.Border}
	pack := func() (*atlas.Layout, error) { return atlas.PackRects(context.Background(), sizes, settings) }
	var l *atlas.Layout
	var err error
	warm := time.Now()
	for i := 0; i < 5 || time.Since(warm) < 200*time.Millisecond; i++ {
		if l, err = pack(); err != nil {
			return result{}, fmt.Errorf("pack %s: %w", s.Name, err)
		}
	}
	r := result{Set: s.Name, Packer: "kiln", Options: map[string]any{"heuristic": "best"}, OK: true}
	for range blocks {
		var times []float64
		c0 := processCPU()
		start := time.Now()
		for len(times) < 50 && (len(times) < 3 || time.Since(start) < 100*time.Millisecond) {
			t0 := time.Now()
			if l, err = pack(); err != nil {
				return result{}, fmt.Errorf("pack %s: %w", s.Name, err)
			}
			times = append(times, float64(time.Since(t0).Microseconds())/1000)
		}
		cpu := processCPU() - c0
		r.blockMs = append(r.blockMs, median(times))
		r.blockCPU = append(r.blockCPU, float64(cpu.Microseconds())/1000/float64(len(times)))
		r.Runs += len(times)
	}
	r.Occupancy, r.Pages = l.Occupancy(sizes), len(l.Pages)
	r.Ms, r.CPUMs = median(r.blockMs), median(r.blockCPU)
	return r, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ensureNodeDeps runs npm ci in dir unless node_modules was installed from
// the same package-lock.json (a stamp file records its hash).
func ensureNodeDeps(dir string) error {
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("read the peers' lock file: %w", err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".kiln-lock-sha256")
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return errors.New("npm is not installed; install Node.js (with npm) to run the peers, or pass -peers=false")
	}
	fmt.Fprintln(os.Stderr, "installing the peer packers (npm ci)…")
	cmd := exec.Command("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w", dir, err)
	}
	return os.WriteFile(stamp, []byte(want+"\n"), 0o644)
}

// runPeers writes the sets to a temporary file and runs peers.cjs on it.
func runPeers(dir string, sets []benchset.Set, timeout int) ([]result, error) {
	if err := ensureNodeDeps(dir); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "kiln-atlas-bench-")
	if err != nil {
		return nil, fmt.Errorf("create a temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	data, err := json.Marshal(sets)
	if err != nil {
		return nil, fmt.Errorf("encode sets: %w", err)
	}
	setsFile := filepath.Join(tmp, "sets.json")
	if err := os.WriteFile(setsFile, data, 0o644); err != nil {
		return nil, fmt.Errorf("write sets: %w", err)
	}
	var stdout bytes.Buffer
	cmd := exec.Command("node", "peers.cjs", setsFile, fmt.Sprint(timeout))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("node peers.cjs: %w", err)
	}
	var rs []result
	if err := json.Unmarshal(stdout.Bytes(), &rs); err != nil {
		return nil, fmt.Errorf("read peers.cjs output: %w", err)
	}
	return rs, nil
}

func describe(r result) string {
	keys := make([]string, 0, len(r.Options))
	for k := range r.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, r.Options[k]))
	}
	return r.Packer + " " + strings.Join(parts, " ")
}

// bestPeer returns the peer result with the highest occupancy on set
// (ties: less CPU time).
func bestPeer(peers []result, set string) (result, bool) {
	var best result
	found := false
	for _, r := range peers {
		if r.Set != set || !r.OK {
			continue
		}
		if !found || r.Occupancy > best.Occupancy+1e-12 || r.Occupancy > best.Occupancy-1e-12 && r.CPUMs < best.CPUMs {
			best, found = r, true
		}
	}
	return best, found
}

func printTable(out io.Writer, sets []benchset.Set, kiln, peers []result, all bool) {
	fmt.Fprintf(out, "Padding 2 px between sprites, 1 px border, max page 2048, no rotation. CPU = process user+system time per pack.\n\n")
	fmt.Fprintln(out, "| set | sprites | kiln occupancy | kiln CPU ms | kiln wall ms | best peer | peer occupancy | peer CPU ms | peer wall ms |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---|---:|---:|---:|")
	for i, s := range sets {
		k := kiln[i]
		p, ok := bestPeer(peers, s.Name)
		peer := "–"
		if ok {
			peer = fmt.Sprintf("%s | %.4f | %.2f | %.2f", describe(p), p.Occupancy, p.CPUMs, p.Ms)
		} else {
			peer += " | – | – | –"
		}
		fmt.Fprintf(out, "| %s | %d | %.4f | %.2f | %.2f | %s |\n", s.Name, len(s.Sizes), k.Occupancy, k.CPUMs, k.Ms, peer)
	}
	if !all || len(peers) == 0 {
		return
	}
	fmt.Fprintln(out, "\nEvery peer configuration:")
	fmt.Fprintln(out, "\n| set | packer | options | occupancy | pages | CPU ms | wall ms | note |")
	fmt.Fprintln(out, "|---|---|---|---:|---:|---:|---:|---|")
	for _, r := range peers {
		d := describe(r)
		opts := strings.TrimPrefix(d, r.Packer+" ")
		if !r.OK {
			fmt.Fprintf(out, "| %s | %s | %s | – | – | – | – | %s |\n", r.Set, r.Packer, opts, r.Note)
			continue
		}
		fmt.Fprintf(out, "| %s | %s | %s | %.4f | %d | %.2f | %.2f | %s |\n", r.Set, r.Packer, opts, r.Occupancy, r.Pages, r.CPUMs, r.Ms, r.Note)
	}
}
