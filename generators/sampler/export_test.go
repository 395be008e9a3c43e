package sampler

// SetHook makes b call fn after a generation joined one of its groups
// ("join", with the group's size) and when a generation waits for the
// others' steps ("wait", with how many are handed in), so that tests can
// order generations by these events instead of depending on timing.
func SetHook(b *Batcher, fn func(event string, n int)) { b.hook = fn }
