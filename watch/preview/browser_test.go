package preview

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// startChromium starts headless Chromium with remote debugging on a free
// port and returns a DevTools connection to its page. It skips the test
// when Chromium is not installed.
func startChromium(t *testing.T) *cdp {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("headless browser test skipped: %s not found; install it with: apt-get install -y chromium", chromiumPath)
	}
	if testing.Short() {
		t.Skip("headless browser test skipped in -short mode")
	}
	profile := t.TempDir()
	cmd := exec.Command(chromiumPath,
		"--headless", "--no-sandbox", "--disable-gpu",
		// Software WebGL, so the material viewer draws without a GPU.
		"--enable-unsafe-swiftshader", "--use-angle=swiftshader",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--no-first-run", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--window-size=1400,1700",
		"about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	t.Cleanup(func() {
		// Chromium's helpers share its process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	// Chromium writes the port it chose to DevToolsActivePort.
	var port string
	deadline := time.Now().Add(30 * time.Second)
	for port == "" {
		if time.Now().After(deadline) {
			t.Fatalf("chromium did not open its debugging port within 30s; stderr:\n%s", stderr.String())
		}
		if data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			if line, _, _ := strings.Cut(string(data), "\n"); line != "" {
				port = strings.TrimSpace(line)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	var ws string
	for ws == "" {
		if time.Now().After(deadline) {
			t.Fatal("chromium has no page target")
		}
		res, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err == nil {
			json.NewDecoder(res.Body).Decode(&targets)
			res.Body.Close()
			for _, tg := range targets {
				if tg.Type == "page" {
					ws = tg.WS
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := dialCDP(ws)
	if err != nil {
		t.Fatalf("connect to chromium: %v", err)
	}
	t.Cleanup(c.close)
	return c
}

// waitJS evaluates expr until it returns want (compared as JSON text).
func waitJS(t *testing.T, c *cdp, expr, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last json.RawMessage
	for time.Now().Before(deadline) {
		if err := c.eval(expr, &last); err != nil {
			t.Fatal(err)
		}
		var got, w any
		json.Unmarshal(last, &got)
		json.Unmarshal([]byte(want), &w)
		if reflect.DeepEqual(got, w) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s = %s after 20s, want %s", expr, last, want)
}

// js evaluates expr and returns its value.
func js[T any](t *testing.T, c *cdp, expr string) T {
	t.Helper()
	var v T
	if err := c.eval(expr, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// screenshot saves the page as a PNG at path.
func screenshot(t *testing.T, c *cdp, path string) {
	t.Helper()
	// Let images and the 3D view settle first.
	if err := c.eval(`Promise.all([...document.images].map((i) => i.complete ? 0 : new Promise((r) => { i.onload = i.onerror = r; })))`, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	var shot struct {
		Data string `json:"data"`
	}
	if err := c.call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestBrowser loads the preview page in headless Chromium, checks what it
// shows (tiled textures, an animating sprite sheet, the 3D material,
// per-stage errors), publishes new states and sees the page follow them
// live without rebuilding cards that did not change.
//
// Set KILN_PREVIEW_SCREENSHOTS to a folder to keep the screenshots.
func TestBrowser(t *testing.T) {
	c := startChromium(t)
	out := t.TempDir()
	st := fixture(t, out)
	s, err := New(Options{OutDir: out})
	mustDo(t, err)
	mustDo(t, s.Start())
	defer s.Close()
	s.Publish(st)

	shots := os.Getenv("KILN_PREVIEW_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	mustDo(t, c.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1400, "height": 1700, "deviceScaleFactor": 1, "mobile": false}, nil))
	mustDo(t, c.call("Page.navigate", map[string]any{"url": s.URL()}, nil))
	waitJS(t, c, `document.body && document.body.dataset.seq || null`, `"1"`)

	// Everything published is on the page.
	if n := js[int](t, c, `document.querySelectorAll('#assets .card').length`); n != 4 {
		t.Errorf("%d asset cards, want 4", n)
	}
	if n := js[int](t, c, `document.querySelectorAll('#atlases .card, #materials .card').length`); n != 2 {
		t.Errorf("%d atlas and material cards, want 2", n)
	}
	if s := js[string](t, c, `document.getElementById('pill').textContent`); s != "up to date" {
		t.Errorf("status pill %q", s)
	}
	// The tileable is shown 2×2, from a versioned URL.
	tiled := js[map[string]string](t, c, `(() => { const d = document.querySelector('[data-id="dungeon/floor"] .tiled'); const cs = getComputedStyle(d); return {size: cs.backgroundSize, repeat: cs.backgroundRepeat, image: cs.backgroundImage}; })()`)
	if tiled["size"] != "50% 50%" || tiled["repeat"] != "repeat" || !strings.Contains(tiled["image"], "/out/dungeon/floor.png?v=") {
		t.Errorf("tileable view %v, want a 2×2 repeat of a versioned URL", tiled)
	}
	firstFloorURL := tiled["image"]
	// The failed asset shows its stage error with the manifest position.
	if e := js[string](t, c, `document.querySelector('[data-id="concepts/castle"] .errors').textContent`); !strings.Contains(e, "assets/concepts.kiln.yaml:6:11: hires.scale") {
		t.Errorf("failed asset's error %q", e)
	}
	// The sprite sheet animates: its canvas shows several frames in turn.
	seen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 3 && time.Now().Before(deadline) {
		f := js[string](t, c, `document.querySelector('[data-id="characters/slime"] canvas.sprite').dataset.frame || ''`)
		if f != "" {
			seen[f] = true
		}
		time.Sleep(40 * time.Millisecond)
	}
	if len(seen) < 3 {
		t.Errorf("sprite showed frames %v, want it to animate through at least 3", seen)
	}
	// The material's glTF was parsed (and, with WebGL, drawn).
	waitJS(t, c, `['ready', 'no-webgl', 'error'].includes(document.querySelector('#materials canvas.gl').dataset.state)`, `true`)
	gl := js[map[string]string](t, c, `Object.assign({}, document.querySelector('#materials canvas.gl').dataset)`)
	switch gl["state"] {
	case "ready":
		waitJS(t, c, `+(document.querySelector('#materials canvas.gl').dataset.frames || 0) > 0`, `true`)
		if e := js[string](t, c, `document.querySelector('#materials canvas.gl').dataset.glError || ''`); e != "" {
			t.Errorf("WebGL error while drawing the material: %s", e)
		}
	case "no-webgl":
		t.Logf("this Chromium has no WebGL 2; the viewer parsed the glTF but could not draw it")
	default:
		t.Errorf("material viewer: %v; note: %q", gl, js[string](t, c, `document.querySelector('#materials .note').textContent`))
	}
	if gl["vertices"] != strconv.Itoa(33*21) {
		t.Errorf("viewer read %s vertices, want %d", gl["vertices"], 33*21)
	}
	if gl["textureError"] != "" {
		t.Errorf("viewer texture error: %s", gl["textureError"])
	}
	screenshot(t, c, filepath.Join(shots, "kiln-preview.png"))

	// A rebuild: the castle is fixed, the floor regenerated, a new asset
	// appears. The page follows without a reload, and the material card,
	// unchanged, keeps its running viewer.
	mustDo(t, c.eval(`document.querySelector('#materials canvas.gl').dataset.mark = 'kept'`, nil))
	mustDo(t, c.eval(`window.notReloaded = true`, nil))
	s.Building([]string{"assets/dungeon.kiln.yaml"})
	waitJS(t, c, `document.getElementById('pill').textContent`, `"building…"`)
	st2 := st.clone()
	st2.Summary = "second build"
	st2.Assets[3].Status = StatusBuilt
	st2.Assets[3].Stages[0].Status, st2.Assets[3].Stages[0].Error = StatusBuilt, ""
	time.Sleep(20 * time.Millisecond) // a new modification time for the floor
	floor, err := os.ReadFile(filepath.Join(out, "dungeon", "floor.png"))
	mustDo(t, err)
	mustDo(t, os.WriteFile(filepath.Join(out, "dungeon", "floor.png"), floor, 0o644))
	st2.Assets = append(st2.Assets, Asset{ID: "late/arrival", Kind: "image", Status: StatusBuilt, Images: []File{{Path: "concepts/castle_1.png"}}})
	s.Publish(st2)
	waitJS(t, c, `document.body.dataset.seq`, `"2"`)
	if !js[bool](t, c, `window.notReloaded === true`) {
		t.Error("the page reloaded instead of updating")
	}
	if !js[bool](t, c, `!!document.querySelector('[data-id="late/arrival"] img')`) {
		t.Error("the new asset is not shown")
	}
	if js[bool](t, c, `!!document.querySelector('[data-id="concepts/castle"] .errors')`) {
		t.Error("the fixed asset still shows an error")
	}
	if u := js[string](t, c, `getComputedStyle(document.querySelector('[data-id="dungeon/floor"] .tiled')).backgroundImage`); u == firstFloorURL {
		t.Errorf("the regenerated floor kept its URL %s", u)
	}
	if m := js[string](t, c, `document.querySelector('#materials canvas.gl').dataset.mark || ''`); m != "kept" {
		t.Error("the unchanged material card was rebuilt")
	}
	if s := js[string](t, c, `document.getElementById('summary').textContent`); !strings.Contains(s, "second build") {
		t.Errorf("summary %q", s)
	}

	// Broken input: the project cannot load; the page says so and keeps
	// showing the last good outputs.
	st3 := st2.clone()
	st3.OK = false
	st3.Summary = "error in 3ms; last good outputs kept"
	st3.Errors = []string{"assets/dungeon.kiln.yaml:7:3: assets[1].promt: unknown field (did you mean \"prompt\"?)"}
	s.Publish(st3)
	waitJS(t, c, `document.body.dataset.seq`, `"3"`)
	if !js[bool](t, c, `!document.getElementById('project-errors').hidden && document.getElementById('project-errors-text').textContent.includes('dungeon.kiln.yaml:7:3')`) {
		t.Error("project errors not shown")
	}
	if s := js[string](t, c, `document.getElementById('pill').textContent`); s != "build failed" {
		t.Errorf("status pill %q after a failed build", s)
	}
	if n := js[int](t, c, `document.querySelectorAll('#assets .card').length`); n != 5 {
		t.Errorf("%d asset cards after a failed build, want the last good 5", n)
	}
	screenshot(t, c, filepath.Join(shots, "kiln-preview-error.png"))

	// Nothing was requested from anywhere but the preview server.
	hosts := js[[]string](t, c, `[...new Set(performance.getEntriesByType('resource').map((e) => new URL(e.name).host))]`)
	for _, h := range hosts {
		if h != strings.TrimSuffix(strings.TrimPrefix(s.URL(), "http://"), "/") {
			t.Errorf("the page loaded from %s", h)
		}
	}
	if len(hosts) == 0 {
		t.Error(fmt.Sprint("no resources recorded: ", hosts))
	}
}
