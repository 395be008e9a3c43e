package gltf

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The Khronos glTF-Validator is pinned in testdata/validator/package.json
// and run through Node by validate.mjs.
const (
	validatorDir = "testdata/validator"
	// validatorSetup installs it, idempotently, from the repository root.
	validatorSetup = "npm install --no-audit --no-fund --prefix exporters/gltf/testdata/validator"
)

// validatorReport is the part of a glTF-Validator report the tests judge.
type validatorReport struct {
	URI              string `json:"uri"`
	MimeType         string `json:"mimeType"`
	ValidatorVersion string `json:"validatorVersion"`
	Issues           struct {
		NumErrors   int `json:"numErrors"`
		NumWarnings int `json:"numWarnings"`
		NumInfos    int `json:"numInfos"`
		NumHints    int `json:"numHints"`
		Messages    []struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			Severity int    `json:"severity"`
			Pointer  string `json:"pointer"`
		} `json:"messages"`
		Truncated bool `json:"truncated"`
	} `json:"issues"`
	Info struct {
		Version   string `json:"version"`
		Generator string `json:"generator"`
		Resources []struct {
			Pointer    string `json:"pointer"`
			MimeType   string `json:"mimeType"`
			Storage    string `json:"storage"`
			URI        string `json:"uri"`
			ByteLength int    `json:"byteLength"`
			Image      *struct {
				Width  int    `json:"width"`
				Height int    `json:"height"`
				Format string `json:"format"`
			} `json:"image"`
		} `json:"resources"`
		ExtensionsUsed  []string `json:"extensionsUsed"`
		MaterialCount   int      `json:"materialCount"`
		DrawCallCount   int      `json:"drawCallCount"`
		TotalVertexCnt  int      `json:"totalVertexCount"`
		TotalTriangles  int      `json:"totalTriangleCount"`
		MaxAttributes   int      `json:"maxAttributes"`
		HasTextures     bool     `json:"hasTextures"`
		HasMaterials    bool     `json:"hasMaterials"`
		HasDefaultScene bool     `json:"hasDefaultScene"`
	} `json:"info"`
}

// runValidator validates files (absolute paths) in one Node process and
// returns a report per file, keyed by path. It fails the test, naming the
// set-up command, when Node or the pinned validator is missing.
func runValidator(t *testing.T, files ...string) map[string]*validatorReport {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH; the glTF exporter tests run the Khronos glTF-Validator with it: install Node.js and npm, then run `%s`", validatorSetup)
	}
	if _, err := os.Stat(filepath.Join(validatorDir, "node_modules", "gltf-validator", "package.json")); err != nil {
		t.Fatalf("the Khronos glTF-Validator is not installed in exporters/gltf/%s: run `%s` from the repository root", validatorDir, validatorSetup)
	}
	cmd := exec.Command(node, append([]string{"validate.mjs"}, files...)...)
	cmd.Dir = validatorDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("glTF-Validator failed (%v): %s\n(if it is missing or stale, run `%s`)", err, stderr.String(), validatorSetup)
		}
		t.Fatalf("run glTF-Validator: %v", err)
	}
	var out struct {
		Version string `json:"version"`
		Reports []struct {
			File   string           `json:"file"`
			Report *validatorReport `json:"report"`
		} `json:"reports"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("parse glTF-Validator output: %v\n%s", err, stdout.String())
	}
	t.Logf("glTF-Validator %s checked %d files", out.Version, len(out.Reports))
	reports := map[string]*validatorReport{}
	for _, r := range out.Reports {
		reports[r.File] = r.Report
	}
	for _, f := range files {
		if reports[f] == nil {
			t.Fatalf("glTF-Validator returned no report for %s", f)
		}
	}
	return reports
}

// checkClean fails unless the report has no issue of any severity, and
// checks that every resource was loaded and decoded, so that "clean" cannot
// come from the validator skipping the images.
func checkClean(t *testing.T, file string, r *validatorReport) {
	t.Helper()
	is := r.Issues
	if is.NumErrors+is.NumWarnings+is.NumInfos+is.NumHints != 0 || is.Truncated {
		t.Errorf("%s: glTF-Validator: %d errors, %d warnings, %d infos, %d hints", file, is.NumErrors, is.NumWarnings, is.NumInfos, is.NumHints)
		for _, m := range is.Messages {
			t.Errorf("  severity %d %s at %s: %s", m.Severity, m.Code, m.Pointer, m.Message)
		}
	}
	for _, res := range r.Info.Resources {
		if res.MimeType == "image/png" && (res.Image == nil || res.Image.Width == 0) {
			t.Errorf("%s: glTF-Validator did not decode image %s (%s %s)", file, res.Pointer, res.Storage, res.URI)
		}
	}
	if r.Info.Generator != Generator {
		t.Errorf("%s: generator %q, want %q", file, r.Info.Generator, Generator)
	}
}
