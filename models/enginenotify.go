package models

import "context"

// NotifyEngine reports e to the function WithEngineNotify put in ctx, if
// any, as kiln's sessions do when they build or load a TensorRT engine.
// It lets code that sets the notification up check where the reports go
// without a TensorRT device.
func NotifyEngine(ctx context.Context, e EngineEvent) { notifyEngine(ctx, e) }
