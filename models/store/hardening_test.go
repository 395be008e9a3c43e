package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestPullTidiesAfterKilledReplace sets up what a replace killed after
// putting the new folder in place leaves (the previous folder in the
// staging folder, as after the atomic exchange, or half removed at
// dest.kiln-old) and checks that the next pull, finding the model up to
// date, removes both; a partial download (no kiln-manifest.json) in the
// staging folder is kept for resuming.
func TestPullTidiesAfterKilledReplace(t *testing.T) {
	s := newModelServer(t)
	for _, tt := range []struct {
		name         string
		stagingDone  bool // the staging folder holds a finished folder
		keepsStaging bool
	}{
		{"previous folder left in staging", true, false},
		{"partial download in staging", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			var out bytes.Buffer
			if _, err := Pull(context.Background(), &out, "tiny", testOptions(root, s.catalog(t, false))); err != nil {
				t.Fatalf("Pull: %v\n%s", err, out.String())
			}
			dest := filepath.Join(root, "models", "tiny")
			staging, old := dest+StagingSuffix, dest+oldSuffix
			copyDir(t, modelDir, staging)
			if tt.stagingDone {
				if err := WriteManifest(staging, modelManifest); err != nil {
					t.Fatal(err)
				}
			}
			copyDir(t, filepath.Join(modelDir, "unet"), filepath.Join(old, "unet"))
			res, err := Pull(context.Background(), &out, "tiny", testOptions(root, s.catalog(t, false)))
			if err != nil || !res.UpToDate {
				t.Fatalf("second pull: %+v, %v", res, err)
			}
			sameTree(t, dest)
			if exists(old) {
				t.Errorf("%s left behind", old)
			}
			if exists(staging) != tt.keepsStaging {
				t.Errorf("staging folder exists: %v, want %v", exists(staging), tt.keepsStaging)
			}
		})
	}
}

// TestPullReplaceSwapsAtomically replaces a model with another version
// (through the atomic exchange on Linux) and checks the result is the new
// model with nothing left behind.
func TestPullReplaceSwapsAtomically(t *testing.T) {
	s := newModelServer(t)
	root := t.TempDir()
	dest := filepath.Join(root, "models", "tiny")
	copyDir(t, modelDir, dest)
	if err := os.WriteFile(filepath.Join(dest, "unet", "model.onnx"), []byte("an older export"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(root, s.catalog(t, false))
	opts.Replace = true
	var out bytes.Buffer
	if _, err := Pull(context.Background(), &out, "tiny", opts); err != nil {
		t.Fatalf("Pull: %v\n%s", err, out.String())
	}
	sameTree(t, dest)
	for _, p := range []string{dest + StagingSuffix, dest + oldSuffix} {
		if exists(p) {
			t.Errorf("%s left behind", p)
		}
	}
}
