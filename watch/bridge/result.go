// Package bridge turns what the rest of kiln produces (pipeline reports,
// loaded projects) into what watch mode shows: watch.Result for the status
// line and preview.State for the preview page. It is separate so that
// package watch and its preview server depend on nothing but the standard
// library and fsnotify.
package bridge

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
	"github.com/kiln-dev/kiln/watch"
)

// Result summarises a pipeline build for the status line. rep may be
// nil (the project could not be loaded, or the stage graph is invalid);
// err is what loading or pipeline.Build returned. Counts and ids come from
// rep; Errors hold every failed stage's error ("file:line:col: message")
// and, one entry per problem, manifest errors (manifests.ErrorList), graph
// errors (*pipeline.GraphError) and any other error. A cancelled build
// sets Interrupted and adds no error.
func Result(rep *pipeline.Report, err error) watch.Result {
	var r watch.Result
	if rep != nil {
		r.Duration = time.Duration(rep.Duration)
		r.Interrupted = rep.Interrupted
		for _, s := range rep.Stages {
			switch s.Status {
			case pipeline.StatusBuilt:
				r.Built++
				r.BuiltIDs = append(r.BuiltIDs, s.ID)
			case pipeline.StatusCached:
				r.Cached++
			case pipeline.StatusFailed:
				r.Failed++
				r.FailedIDs = append(r.FailedIDs, s.ID)
				if s.Error != nil {
					r.Errors = append(r.Errors, s.Error.Error())
				} else {
					r.Errors = append(r.Errors, "stage "+s.ID+" failed")
				}
			case pipeline.StatusSkipped, pipeline.StatusInterrupted:
				r.Skipped++
			}
		}
		sort.Strings(r.BuiltIDs)
		sort.Strings(r.FailedIDs)
	}
	if err == nil {
		return r
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		r.Interrupted = true
		return r
	}
	if rep != nil && errors.Is(err, pipeline.ErrFailed) {
		return r // the failed stages' errors are listed already
	}
	if errors.Is(err, pipeline.ErrLocked) {
		// Another kiln build (a manual one, say) is writing: try again
		// once it is done rather than leave the outputs behind.
		r.RetryAfter = LockRetry
	}
	r.Errors = append(r.Errors, errorLines(err)...)
	return r
}

// LockRetry is how soon a watch build that found the project locked by
// another kiln build tries again.
const LockRetry = 250 * time.Millisecond

// errorLines splits err into one entry per problem.
func errorLines(err error) []string {
	var list manifests.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = e.Error()
		}
		return out
	}
	var one *manifests.Error
	if errors.As(err, &one) {
		return []string{one.Error()}
	}
	var ge *pipeline.GraphError
	if errors.As(err, &ge) && len(ge.Problems) > 0 {
		out := make([]string, len(ge.Problems))
		for i, p := range ge.Problems {
			out[i] = p.String()
		}
		return out
	}
	return []string{strings.TrimRight(err.Error(), "\n")}
}
