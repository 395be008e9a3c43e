package pipeline

import "fmt"

// skipStopped marks n skipped, and reports true, when the build stopped
// after a failure (Options.KeepGoing unset) and n would have to run: no
// new stage starts then. It is asked only after the cache lookup, so the
// stages the failure does not block keep the status the cache gives them.
func (b *builder) skipStopped(n *node) bool {
	id := b.stopped.Load()
	if id == nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rep.Status = StatusSkipped
	n.rep.Reasons = append(n.rep.Reasons, fmt.Sprintf("not started: the build stopped after %s failed (--keep-going builds everything that does not depend on it)", *id))
	return true
}
