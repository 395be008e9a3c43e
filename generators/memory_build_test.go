package generators_test

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"testing"

	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/pipeline"
)

// machine is a MemoryProbe of a machine with avail bytes free and, when
// limit is not 0, an address-space limit of which the process uses used
// bytes.
func machine(avail, limit, used int64) *generators.MemoryProbe {
	files := map[string]string{
		"/proc/meminfo":     fmt.Sprintf("MemTotal: 99999999 kB\nMemAvailable: %d kB\n", avail>>10),
		"/proc/self/status": fmt.Sprintf("Name: kiln\nVmSize: %d kB\n", used>>10),
	}
	return &generators.MemoryProbe{
		ReadFile: func(name string) ([]byte, error) {
			if s, ok := files[name]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		AddressSpaceLimit: func() (uint64, bool) { return uint64(limit), limit > 0 },
	}
}

// TestMemoryRefusal builds projects whose stages do not fit the memory an
// injected probe reports (or runtime.memory_budget): the stage that does
// not fit fails before it allocates, at its asset's position, saying
// what it needs, what is available under which limit, and what to lower;
// the stages before it build. No model is loaded: generation stages are
// refused before they open theirs, and the others are image-to-image
// copies at strength 0.
func TestMemoryRefusal(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name     string
		config   string // added to kiln.yaml
		manifest string
		probe    *generators.MemoryProbe
		stage    string   // the stage that must fail
		built    []string // stages that must build
		want     string   // regexp its error must match
	}{
		{
			name:     "tileable over free memory",
			manifest: "  - {id: big/wall, kind: tileable, model: ex, prompt: brick, size: 2048}\n",
			probe:    machine(1*gib, 0, 0),
			stage:    "big/wall:generate",
			want: `^a\.kiln\.yaml:3:5: not enough memory to generate 2048x2048 with model "ex": it needs an estimated [0-9.]+ GiB of memory \(Go heap [0-9.]+ MiB, ONNX Runtime [0-9.]+ GiB\), ` +
				`but 1\.00 GiB is available under MemAvailable in /proc/meminfo; lower size \(a\.kiln\.yaml:3:\d+\) to \d+x\d+ or less, or give kiln more memory`,
		},
		{
			name:     "tileable over the address-space limit",
			manifest: "  - {id: big/wall, kind: tileable, model: ex, prompt: brick, size: 8192}\n",
			probe:    machine(64*gib, 4000000<<10, 3*gib/2),
			stage:    "big/wall:generate",
			want: `^a\.kiln\.yaml:3:5: not enough memory to generate 8192x8192 with model "ex": it needs an estimated [0-9.]+ GiB of address space \(Go heap [0-9.]+ GiB, ONNX Runtime [0-9.]+ GiB, reserved by threads and allocators [0-9.]+ [MG]iB\), ` +
				`but [0-9.]+ GiB is available under the address-space limit \(ulimit -v 3\.81 GiB, of which kiln uses 1\.50 GiB\); lower size \(a\.kiln\.yaml:3:\d+\) to \d+x\d+ or less`,
		},
		{
			name:     "runtime.memory_budget",
			config:   "runtime: {memory_budget: 256MiB}\n",
			manifest: "  - {id: t, kind: tileable, model: ex, prompt: stone, size: 1024}\n",
			probe:    machine(64*gib, 0, 0),
			stage:    "t:generate",
			want:     `^a\.kiln\.yaml:3:5: not enough memory to generate 1024x1024 .* but 256 MiB is available under runtime\.memory_budget \(kiln\.yaml:\d+:\d+\); .*or raise runtime\.memory_budget in kiln\.yaml if the machine has the memory$`,
		},
		{
			name:   "texture maps",
			config: "runtime: {memory_budget: 128MiB}\n",
			manifest: "  - {id: src, kind: image, image: {source: art/big.png}}\n" +
				"  - {id: t, kind: texture, model: ex, prompt: stone, size: 1024, from: src, strength: 0, texture: {maps: [albedo, normal, orm]}}\n",
			probe: machine(64*gib, 0, 0),
			stage: "t:derive",
			built: []string{"src:source", "t:generate"},
			want:  `^a\.kiln\.yaml:4:5: not enough memory to derive the PBR maps of a 1024x1024 albedo: .* under runtime\.memory_budget .*; lower size \(a\.kiln\.yaml:4:\d+\) to \d+x\d+ or less, or raise`,
		},
		{
			name:   "sprite sheet",
			config: "runtime: {memory_budget: 128MiB}\n",
			manifest: "  - {id: src, kind: image, image: {source: art/small.png}}\n" +
				"  - {id: s, kind: sprite-sheet, model: ex, prompt: knight, size: 512, from: src, sprite: {frames: 24, consistency: 1, background: key}}\n",
			probe: machine(64*gib, 0, 0),
			stage: "s:sheet",
			built: []string{"s:frame_000", "s:frame_023"},
			want:  `^a\.kiln\.yaml:4:5: not enough memory to build the sheet of 24 frames of 512x512 \(generated at 512x512\): .*; lower sprite\.frames \(a\.kiln\.yaml:4:\d+\) to \d+ or fewer, or lower size \(a\.kiln\.yaml:4:\d+\) to \d+x\d+ or less`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := project(t, "", map[string]string{
				manifests.ConfigFile: "version: 1\nmodels:\n  ex: builtin:exemplar\n" + tc.config,
				"a.kiln.yaml":        "version: 1\nassets:\n" + tc.manifest,
				"art/big.png":        string(pngBytes(t, 1024, 1024)),
				"art/small.png":      string(pngBytes(t, 512, 512)),
			})
			p, err := manifests.Load(root)
			if err != nil {
				t.Fatal(err)
			}
			ms := generators.NewModelSet(p.Config, root, models.RuntimeOptions{Library: noLibrary, CacheDir: t.TempDir()}, nil)
			defer ms.Close()
			stages, err := generators.Plan(p, &generators.Env{Models: ms, Version: "test", Memory: tc.probe})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := pipeline.Build(context.Background(), stages, pipeline.Options{Root: root, Jobs: 1, KeepGoing: true})
			if err == nil {
				t.Fatal("the build succeeded")
			}
			st := rep.Stage(tc.stage)
			if st == nil || st.Status != pipeline.StatusFailed || st.Error == nil {
				t.Fatalf("stage %s: %+v", tc.stage, st)
			}
			msg := st.Error.Error()
			t.Log(msg)
			if !regexp.MustCompile(tc.want).MatchString(msg) {
				t.Errorf("error\n%s\ndoes not match\n%s", msg, tc.want)
			}
			for _, id := range tc.built {
				if got := status(t, rep, id); got != pipeline.StatusBuilt {
					t.Errorf("%s: %s, want built", id, got)
				}
			}
		})
	}
}
