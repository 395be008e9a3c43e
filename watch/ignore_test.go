package watch

import (
	"path/filepath"
	"testing"
)

func TestIsTempName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"dungeon.kiln.yaml", false},
		{"floor.png", false},
		{"kiln.yaml", false},
		{"dungeon.kiln.yaml~", true},            // backup (vim, emacs, gedit)
		{".dungeon.kiln.yaml.swp", true},        // vim swap
		{".dungeon.kiln.yaml.swo", true},        // vim second swap
		{".dungeon.kiln.yaml.swx", true},        // vim probe swap
		{"dungeon.swp", false},                  // not hidden: a user's file
		{".dungeon.swz", false},                 // not a vim extension
		{"4913", true},                          // vim write probe
		{"5036", true},                          // 4913 + 123
		{"5037", false},                         // not on vim's sequence
		{"4912", false},                         // below it
		{"04913", false},                        // leading zero: not vim's
		{"floor.png.tmp", true},                 // generic temp
		{"dungeon.kiln.yaml___jb_tmp___", true}, // JetBrains safe write
		{"dungeon.kiln.yaml___jb_old___", true}, // JetBrains safe write
		{"dungeon.kiln.yaml.vsctmp", true},      // VS Code atomic save
		{".#dungeon.kiln.yaml", true},           // emacs lock
		{"#dungeon.kiln.yaml#", true},           // emacs auto-save
		{"#", false},                            // a lone hash
		{".floor.png.kiln-tmp-8f3a2c", true},    // kiln's own atomic write
		{"floor.kiln-tmp-8f3a2c", false},        // not hidden: not ours
		{".goutputstream-XYZ123", true},         // GTK editors
		{".dungeon.kiln.yaml.kate-swp", true},   // Kate
		{"tmp", false},                          // just a name
		{".tmpl", false},                        // not .tmp
		{"templates.tmpl", false},               // not .tmp
		{"dungeon.kiln.yaml.orig", false},       // merge leftovers are real files
		{"", false},                             // nothing
		{"~", true},                             // odd but a backup name
		{".swp", true},                          // vim swap of an unnamed buffer
		{"sedAb3xZ9", true},                     // sed -i
		{"sed0q1w2e", true},                     // sed -i
		{"sedimentx.png", false},                // has an extension: a file
		{"sedabc", false},                       // too short for sed's
		{"sed-abcde", false},                    // not sed's letters
	}
	for _, tt := range tests {
		if got := IsTempName(tt.name); got != tt.want {
			t.Errorf("IsTempName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIgnoreMatch(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	ig, err := NewIgnore(root, "out", ".kiln/cache", filepath.Join(root, "build", "tmp"), "*.psd", "art/wip/*", "exact.txt")
	mustDo(t, err)
	tests := []struct {
		path string
		want bool
	}{
		{".", false},
		{"kiln.yaml", false},
		{"assets/dungeon.kiln.yaml", false},
		{"assets/floor.png", false},
		{"out", true},
		{"out/dungeon/floor.png", true},
		{"outline.kiln.yaml", false}, // shares a prefix with "out"
		{"output/x.png", false},
		{".kiln", true},
		{".kiln/cache/blobs/ab", true},
		{".kiln/models/x.onnx", true},
		{"build/tmp/a", true},
		{"build/other", false},
		{".git", true},
		{".git/index", true},
		{"sub/.git/HEAD", true},
		{".hg/store", true},
		{".svn/wc.db", true},
		{"node_modules/x/package.json", true},
		{"tools/node_modules/y.js", true},
		{".idea/workspace.xml", true},
		{".vscode/settings.json", true},
		{"assets/.DS_Store", true},
		{"assets/.dungeon.kiln.yaml.swp", true},
		{"assets/4913", true},
		{"assets/dungeon.kiln.yaml~", true},
		{"assets/dungeon.kiln.yaml___jb_tmp___", true},
		{"assets/floor.psd", true},
		{"assets/psd/floor.png", false},
		{"art/wip/sketch.png", true},
		{"art/wip/deep/sketch.png", true}, // under a matched folder
		{"art/final/sketch.png", false},
		{"exact.txt", true},
		{"sub/exact.txt", false}, // a path, not a name
		{filepath.Join(root, "assets", "x.png"), false},
		{filepath.Join(root, "out", "x.png"), true},
		{filepath.Join(outside, "x.png"), true}, // outside the project
		{"../elsewhere/x.png", true},
	}
	for _, tt := range tests {
		if got := ig.Match(filepath.FromSlash(tt.path)); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestIgnoreBadPattern(t *testing.T) {
	_, err := NewIgnore(t.TempDir(), "[oops")
	if err == nil {
		t.Fatal("a malformed pattern was accepted")
	}
}

func TestIgnoreRel(t *testing.T) {
	root := t.TempDir()
	ig, err := NewIgnore(root)
	mustDo(t, err)
	if got := ig.Rel(filepath.Join(root, "a", "b.png")); got != "a/b.png" {
		t.Fatalf("Rel = %q, want a/b.png", got)
	}
}
