package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/pipeline"
)

// TestSchemaReport checks kiln schema --report: the report's JSON
// Schema, which requires the schema version.
func TestSchemaReport(t *testing.T) {
	r := kiln(t, ".", "schema", "--report")
	var s struct {
		Required   []string                  `json:"required"`
		Properties map[string]map[string]any `json:"properties"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &s) != nil {
		t.Fatalf("schema --report: exit %d, %s", r.code, r.stderr)
	}
	if !slices.Contains(s.Required, "schema_version") || s.Properties["schema_version"]["const"] != float64(pipeline.ReportSchemaVersion) {
		t.Errorf("the report schema does not require schema_version %d: %v", pipeline.ReportSchemaVersion, s.Properties["schema_version"])
	}
	if r := kiln(t, ".", "schema", "--report", "--config"); r.code != 2 {
		t.Errorf("--report --config: exit %d, want 2", r.code)
	}
}

// buildJSONReport is the part of kiln build --json's report these tests read.
type buildJSONReport struct {
	SchemaVersion int `json:"schema_version"`
	Stages        []struct {
		Asset   string   `json:"asset"`
		Status  string   `json:"status"`
		Started string   `json:"started"`
		Queue   *float64 `json:"queue_ms"`
		Run     *float64 `json:"run_ms"`
	} `json:"stages"`
}

// TestBuildReportHonest checks the cases end to end: a missing
// source image fails its asset without marking the cached ones skipped,
// the report says its version and each stage's times, and a real build
// with --explain prints why each stage ran.
func TestBuildReportHonest(t *testing.T) {
	dir := imageProject(t)
	if r := kiln(t, dir, "build", "-q"); r.code != 0 {
		t.Fatalf("first build: exit %d\n%s", r.code, r.stderr)
	}
	if err := os.Remove(filepath.Join(dir, "art/b.png")); err != nil {
		t.Fatal(err)
	}
	r := kiln(t, dir, "build", "--json")
	if r.code != 1 {
		t.Fatalf("build with a missing source: exit %d, want 1\n%s", r.code, r.stderr)
	}
	var rep buildJSONReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, r.stdout)
	}
	if rep.SchemaVersion != pipeline.ReportSchemaVersion {
		t.Errorf("schema_version %d, want %d", rep.SchemaVersion, pipeline.ReportSchemaVersion)
	}
	statuses := map[string]string{}
	for _, s := range rep.Stages {
		if s.Asset == "props/a" || s.Asset == "props/b" || s.Asset == "props/c" {
			statuses[s.Asset] = s.Status
		}
		if s.Queue == nil || s.Run == nil || s.Started == "" && s.Status != "skipped" {
			t.Errorf("%s: queue %v, run %v, started %q", s.Asset, s.Queue, s.Run, s.Started)
		}
	}
	if want := map[string]string{"props/a": "cached", "props/b": "failed", "props/c": "cached"}; !maps.Equal(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}

	// A real build with --explain says why the stage ran.
	writeFiles(t, dir, map[string]string{"art/b.png": string(pngOf(t, dir, "art/a.png"))})
	r = kiln(t, dir, "build", "--explain")
	if r.code != 0 {
		t.Fatalf("build --explain: exit %d\n%s", r.code, r.stderr)
	}
	var line string
	for l := range strings.Lines(r.stderr) {
		if strings.Contains(l, "built props/b") {
			line = l
		}
	}
	if !strings.Contains(line, "): ") {
		t.Errorf("the built stage's line gives no reason: %q\n%s", line, r.stderr)
	}
}

// pngOf returns a project file's bytes.
func pngOf(t *testing.T, dir, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
