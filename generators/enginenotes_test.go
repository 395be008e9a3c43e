package generators

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/pipeline"
)

// TestEngineNotes checks the wiring of issue 13's compile line without a
// TensorRT device: the engine events a generation's context receives
// become the stage's status note (its progress line) while the engine is
// prepared, and each compile, with its duration, a report note.
func TestEngineNotes(t *testing.T) {
	type note struct{ key, value string }
	var notes []note
	r := pipeline.NewRun(t.TempDir(), nil, nil, nil, nil, func(k, v string) { notes = append(notes, note{k, v}) })
	ctx := withEngineNotes(context.Background(), r)
	unet := models.EngineEvent{Graph: "unet/model.onnx", Provider: models.ProviderTensorRT, Reason: "a new session"}
	vae := models.EngineEvent{Graph: "vae_decoder/model.onnx", Provider: models.ProviderTensorRT, Reason: "a new session"}
	events := []models.EngineEvent{unet, vae}
	unet.Done, unet.Compiled, unet.Took = true, true, 3*time.Minute+12*time.Second
	vae.Done, vae.Took = true, 40*time.Millisecond // loaded from the cache
	events = append(events, unet, vae)
	for _, e := range events {
		models.NotifyEngine(ctx, e)
	}
	want := []note{
		{pipeline.NoteStatus, events[0].String()},
		{pipeline.NoteStatus, events[1].String()},
		{models.NoteEngineCompile, "unet/model.onnx 3m12s"},
		{pipeline.NoteStatus, "compiled the TensorRT engine for unet/model.onnx in 3m12s"},
		{pipeline.NoteStatus, "loaded the TensorRT engine for vae_decoder/model.onnx from the cache in 40ms"},
	}
	if !reflect.DeepEqual(notes, want) {
		t.Errorf("notes\n%q\nwant\n%q", notes, want)
	}
}
