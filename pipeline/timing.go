package pipeline

import (
	"context"
	"time"
)

// waitSlot is switchSlot for stage n, counting the time it waits for the
// slot as n's queue time (StageReport.Queue): a stage waiting for its
// device is not doing its own work, and reporting that wait as its
// duration made the stages' times add up to far more than the build's.
func (b *builder) waitSlot(ctx context.Context, n *node, held *chan struct{}, want chan struct{}) error {
	if *held == want {
		return nil
	}
	now := b.clock
	if now == nil {
		now = time.Now
	}
	t0 := now()
	err := b.switchSlot(ctx, held, want)
	n.addQueue(now().Sub(t0))
	return err
}

// addQueue adds d to n's queue time.
func (n *node) addQueue(d time.Duration) {
	n.mu.Lock()
	n.queued += d
	n.mu.Unlock()
}
