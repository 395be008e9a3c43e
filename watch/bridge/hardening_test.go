package bridge

import (
	"fmt"
	"testing"

	"github.com/kiln-dev/kiln/pipeline"
)

// TestResultRetriesWhenLocked checks that a build refused because another
// kiln build holds the project lock asks watch mode to try again, and that
// other failures do not.
func TestResultRetriesWhenLocked(t *testing.T) {
	locked := fmt.Errorf("build: %w", &pipeline.LockedError{Path: "/p/.kiln/cache/lock", PID: 42})
	r := Result(nil, locked)
	if r.RetryAfter != LockRetry || len(r.Errors) != 1 || r.Errors[0] != "build: another kiln build (pid 42) holds the lock on /p/.kiln/cache/lock; wait for it to finish or stop it" {
		t.Errorf("locked: %+v", r)
	}
	if r := Result(nil, fmt.Errorf("read state: %w", fmt.Errorf("disk on fire"))); r.RetryAfter != 0 {
		t.Errorf("another error asks for a retry: %+v", r)
	}
}
