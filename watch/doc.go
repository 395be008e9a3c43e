// Package watch keeps a kiln project built while a designer edits it.
//
// A [Watcher] follows every folder of the project with fsnotify (folders,
// not files, because editors save by writing a temporary file and renaming
// it over the original), skips what never matters (kiln's own outputs and
// cache, version-control folders, editor swap and backup files), and turns
// a burst of file-system events into one [Batch] of changed paths once the
// project has been quiet for the debounce interval.
//
// [Run] drives the rebuild loop on top of it: one build at start, one per
// batch, a running build cancelled (with [ErrSuperseded] as the context's
// cause) when newer edits arrive, and one compact status line per build
// with errors printed in full. A failed build is just reported: kiln never
// deletes outputs on failure, so the last good outputs stay in place until
// the fix arrives.
//
// The preview subpackage serves the output folder and a live page of every
// asset for a browser.
package watch
