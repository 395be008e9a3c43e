package main

import (
	"bytes"
	"testing"

	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/pipeline"
)

// TestProgressStatusLines checks that the plain-line display prints a
// running stage's status notes (a TensorRT compile) and leaves its other
// notes to the report.
func TestProgressStatusLines(t *testing.T) {
	var buf bytes.Buffer
	p, ok := newProgress(&buf, false).(pipeline.NoteProgress)
	if !ok {
		t.Fatal("the line display does not show stage notes")
	}
	p.StageNote("hero:gen", pipeline.NoteStatus, "preparing the TensorRT engine for unet/model.onnx (a new session; a first build compiles, which takes minutes)")
	p.StageNote("hero:gen", models.NoteEngineCompile, "unet/model.onnx 3m12s")
	p.StageNote("hero:gen", pipeline.NoteStatus, "compiled the TensorRT engine for unet/model.onnx in 3m12s")
	want := "      hero:gen: preparing the TensorRT engine for unet/model.onnx (a new session; a first build compiles, which takes minutes)\n" +
		"      hero:gen: compiled the TensorRT engine for unet/model.onnx in 3m12s\n"
	if got := buf.String(); got != want {
		t.Errorf("output\n%s\nwant\n%s", got, want)
	}
}
