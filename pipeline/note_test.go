package pipeline

import (
	"context"
	"io"
	"reflect"
	"testing"
)

// noteRecorder is a Progress that keeps the notes running stages show.
type noteRecorder struct {
	LineProgress
	notes [][3]string
}

func (r *noteRecorder) StageNote(id, key, value string) {
	r.notes = append(r.notes, [3]string{id, key, value})
}

// TestStageNotes checks that a running stage's notes reach a NoteProgress
// display as they are made, and that a NoteStatus note is shown but kept
// out of the report, whose notes say what the stage did.
func TestStageNotes(t *testing.T) {
	p := newProject(t)
	rec := &noteRecorder{LineProgress: *NewLineProgress(io.Discard)}
	stages := []Stage{{ID: "gen", Asset: "gen", Kind: "k", Version: "1", Run: func(ctx context.Context, r *Run) error {
		r.Note(NoteStatus, "compiling the engine")
		r.Note("tensorrt_compile", "unet/model.onnx 3m12s")
		return r.WriteFile("out", []byte("x"))
	}}}
	o := p.opts()
	o.Progress = rec
	rep := p.build(stages, o)
	want := [][3]string{{"gen", NoteStatus, "compiling the engine"}, {"gen", "tensorrt_compile", "unet/model.onnx 3m12s"}}
	if !reflect.DeepEqual(rec.notes, want) {
		t.Errorf("notes shown %v, want %v", rec.notes, want)
	}
	if got := rep.Stages[0].Notes; !reflect.DeepEqual(got, map[string]string{"tensorrt_compile": "unet/model.onnx 3m12s"}) {
		t.Errorf("report notes %v, want only tensorrt_compile", got)
	}
}
