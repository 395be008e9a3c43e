package atlas

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The browser test loads written atlases in real PixiJS 8 and Phaser 3,
// the packages pinned in testdata/engines, inside headless Chromium, the
// way the README's recipes do: PixiJS Assets.load of the first JSON hash
// file (which brings every other page through related_multi_packs) and
// Phaser load.multiatlas (load.atlas for one page). It checks that both get
// every animation with its frames from the right pages, including an
// animation too large for one page, and that a half-scale variant loads at
// resolution 0.5.

const chromium = "/usr/bin/chromium"

// browserFrame is one animation frame as browser.js reports it.
type browserFrame struct{ Name, Page string }

type browserCase struct {
	Pixi struct {
		Resolution float64
		Pages      int
		Animations map[string][]browserFrame
		Textures   map[string]struct {
			Page    string
			Orig    [2]float64
			Anchor  *[2]float64
			Borders *[4]int
		}
	}
	Phaser struct {
		Pages      int
		Animations map[string][]browserFrame
		Frames     map[string]struct {
			Page   string
			Pivot  *[2]float64
			Scale9 *[4]int
		}
	}
}

// slicedSprites is fixedSprites with 9-slice borders on the button.
func slicedSprites() []Sprite {
	sp := fixedSprites()
	sp[0].Slice = &[4]int{3, 2, 4, 1}
	return sp
}

func TestBrowserEnginesLoadAtlases(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("headless browser test skipped: %s not found; install it with: apt-get install -y chromium", chromium)
	}
	for _, pkg := range []string{"pixi.js/dist/pixi.min.js", "phaser/dist/phaser.min.js"} {
		if _, err := os.Stat(filepath.Join(enginesDir, "node_modules", pkg)); err != nil {
			t.Skipf("the engines are not installed; run: npm ci --ignore-scripts --prefix exporters/atlas/%s", enginesDir)
		}
	}
	if testing.Short() {
		t.Skip("headless browser test skipped in -short mode")
	}
	cases := []struct {
		name    string
		sprites []Sprite
		s       Settings
		base    string
	}{
		{"one-page", slicedSprites(), Settings{Padding: 1, Formats: []string{FormatJSONHash, FormatPhaser}}, "sheet"},
		{"multi-page", animatedSet(4), Settings{MaxSize: 48, Padding: 1, Formats: []string{FormatJSONHash, FormatPhaser}}, "sheet"},
		{"spanning", animatedSet(12), Settings{MaxSize: 48, Padding: 1, Formats: []string{FormatJSONHash, FormatPhaser}}, "sheet"},
		{"half", slicedSprites(), Settings{Padding: 1, Scale: 0.5, Formats: []string{FormatJSONHash, FormatPhaser}}, "sheet@0.5x"},
	}
	root := t.TempDir()
	atlases := map[string]*Atlas{}
	q := []string{}
	var names []string
	for _, tc := range cases {
		a, err := Pack(context.Background(), tc.sprites, tc.s)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		dir := filepath.Join(root, tc.name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write(dir, tc.base); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		atlases[tc.name] = a
		names = append(names, tc.name)
		q = append(q, "base_"+tc.name+"="+strings.ReplaceAll(tc.base, "@", "%40"))
		if len(a.Pages) > 1 {
			q = append(q, "multi_"+tc.name+"=1")
		}
	}
	if len(atlases["multi-page"].Pages) < 2 || len(atlases["spanning"].SplitAnimations()) == 0 {
		t.Fatal("the multi-page cases do not have several pages and a spanning animation; they test nothing")
	}

	results := make(chan []byte, 1)
	mux := http.NewServeMux()
	mux.Handle("/engines/", http.StripPrefix("/engines/", http.FileServer(http.Dir(enginesDir))))
	mux.Handle("/atlas/", http.StripPrefix("/atlas/", http.FileServer(http.Dir(root))))
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case results <- b:
		default:
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	url := fmt.Sprintf("%s/engines/browser.html?cases=%s&%s", srv.URL, strings.Join(names, ","), strings.Join(q, "&"))
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--mute-audio", "--user-data-dir="+t.TempDir(), url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// Chromium's helpers share its process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()
	var body []byte
	select {
	case body = <-results:
	case err := <-exited:
		exited <- err
		t.Fatalf("chromium exited before the page reported: %v\n%s", err, stderr.String())
	case <-time.After(3 * time.Minute):
		// Not a timing assertion: a page that never reports has failed.
		t.Fatalf("the page never reported its results\n%s", stderr.String())
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("read results: %v\n%s", err, body)
	}
	if e, ok := res["error"]; ok {
		t.Fatalf("the page failed: %s", e)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c browserCase
			if err := json.Unmarshal(res[tc.name], &c); err != nil {
				t.Fatal(err)
			}
			checkBrowser(t, atlases[tc.name], tc.base, &c)
		})
	}
}

func checkBrowser(t *testing.T, a *Atlas, base string, c *browserCase) {
	t.Helper()
	images := a.PageNames(base)
	if c.Pixi.Pages != len(a.Pages) || c.Phaser.Pages != len(a.Pages) {
		t.Errorf("PixiJS loaded %d pages and Phaser %d, want %d", c.Pixi.Pages, c.Phaser.Pages, len(a.Pages))
	}
	if c.Pixi.Resolution != a.Settings.Scale {
		t.Errorf("PixiJS resolution %v, want the atlas scale %v", c.Pixi.Resolution, a.Settings.Scale)
	}
	// Phaser names pages by their index in the texture.
	for _, frames := range c.Phaser.Animations {
		for i := range frames {
			frames[i].Page = phaserPage(images, frames[i].Page)
		}
	}
	for engine, got := range map[string]map[string][]browserFrame{"PixiJS": c.Pixi.Animations, "Phaser": c.Phaser.Animations} {
		if len(got) != len(a.Animations) {
			t.Errorf("%s has %d animations, want %d", engine, len(got), len(a.Animations))
		}
		for _, an := range a.Animations {
			var want []browserFrame
			for _, k := range an.Frames {
				want = append(want, browserFrame{a.Frames[k].Name, images[a.Frames[k].Page]})
			}
			if !slices.Equal(got[an.FullName], want) {
				t.Errorf("%s animation %s:\n got %v\nwant %v", engine, an.FullName, got[an.FullName], want)
			}
		}
	}
	for k := range a.Frames {
		f := &a.Frames[k]
		px, ok := c.Pixi.Textures[f.Name]
		ph, ok2 := c.Phaser.Frames[f.Name]
		if !ok || !ok2 {
			t.Errorf("%s: PixiJS has it %v, Phaser %v", f.Name, ok, ok2)
			continue
		}
		if ph.Page = phaserPage(images, ph.Page); px.Page != images[f.Page] || ph.Page != images[f.Page] {
			t.Errorf("%s: on page %s in PixiJS and %s in Phaser, want %s", f.Name, px.Page, ph.Page, images[f.Page])
		}
		// A scaled variant reports the full-size dimensions.
		if want := [2]float64{float64(f.SourceW) / a.Settings.Scale, float64(f.SourceH) / a.Settings.Scale}; px.Orig != want {
			t.Errorf("%s: PixiJS size %v, want %v", f.Name, px.Orig, want)
		}
		if f.HasPivot != (px.Anchor != nil) || f.HasPivot && *px.Anchor != f.Pivot {
			t.Errorf("%s: PixiJS anchor %v, want %v (set %v)", f.Name, px.Anchor, f.Pivot, f.HasPivot)
		}
		if ph.Pivot == nil || *ph.Pivot != f.Pivot {
			t.Errorf("%s: Phaser pivot %v, want %v", f.Name, ph.Pivot, f.Pivot)
		}
		l, tp, r, b := f.Slice[0], f.Slice[1], f.Slice[2], f.Slice[3]
		if f.HasSlice != (px.Borders != nil) || f.HasSlice && *px.Borders != f.Slice {
			t.Errorf("%s: PixiJS borders %v, want %v (set %v)", f.Name, px.Borders, f.Slice, f.HasSlice)
		}
		if f.HasSlice != (ph.Scale9 != nil) || f.HasSlice && *ph.Scale9 != [4]int{l, tp, f.W - l - r, f.H - tp - b} {
			t.Errorf("%s: Phaser scale9 borders %v, want the middle of slice %v", f.Name, ph.Scale9, f.Slice)
		}
	}
}

// phaserPage maps a Phaser texture source index to the page image name.
func phaserPage(images []string, index string) string {
	var i int
	if _, err := fmt.Sscan(index, &i); err != nil || i < 0 || i >= len(images) {
		return "source " + index
	}
	return images[i]
}
