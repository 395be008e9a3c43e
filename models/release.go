package models

// ReleaseIdle destroys every pooled session that is not in use and that
// keep (when not nil) does not ask to keep, which frees its weights and
// ONNX Runtime's working memory, and returns how many it destroyed.
// Later Acquires load them again. Callers use it when memory is short:
// before refusing work that would not fit beside the sessions earlier
// work left loaded, keeping those the work itself will use.
func (r *Runtime) ReleaseIdle(keep func(PoolKey) bool) int {
	p := r.pool
	p.mu.Lock()
	var victims []*poolEntry
	for el := p.lru.Back(); el != nil; {
		prev := el.Prev()
		e := el.Value.(*poolEntry)
		if e.refs == 0 && e.sess != nil && (keep == nil || !keep(e.key)) {
			p.removeLocked(e)
			victims = append(victims, e)
			p.rt.stats.evictions.Add(1)
		}
		el = prev
	}
	p.mu.Unlock()
	for _, v := range victims {
		v.sess.Destroy()
		r.log.Debug("released idle ONNX Runtime session", "model", v.key.Path, "variant", v.key.Variant)
	}
	return len(victims)
}
