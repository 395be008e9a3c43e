package watch

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// inotifyLimit reads /proc/sys/fs/inotify/<name>, or returns "" when it
// cannot (not Linux, or /proc not mounted).
func inotifyLimit(name string) string {
	b, err := os.ReadFile("/proc/sys/fs/inotify/" + name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// limitValue formats a limit's current value for a message.
func limitValue(name string) string {
	if v := inotifyLimit(name); v != "" {
		return name + "=" + v
	}
	return name
}

// isWatchLimit reports whether err from adding a watch means the user's
// watch limit is reached (inotify_add_watch fails with ENOSPC, despite the
// name not about disk space) rather than a problem with the folder.
func isWatchLimit(err error) bool {
	return errors.Is(err, syscall.ENOSPC)
}

// isInstanceLimit reports whether err from creating a watcher means the
// user's limit of inotify instances is reached (inotify_init1: EMFILE).
func isInstanceLimit(err error) bool {
	return errors.Is(err, syscall.EMFILE)
}

// overflowWarning explains a lost-events overflow and what to do.
func overflowWarning() string {
	if runtime.GOOS != "linux" {
		return "warning: the operating system dropped file-change events (too many changes at once); kiln rescanned the project and rebuilds what changed"
	}
	return fmt.Sprintf("warning: more file changes arrived at once than the kernel queues for one watcher (fs.inotify.%s), so some change events were lost. "+
		"kiln rescanned the project and rebuilds what changed, so nothing is missed. "+
		"If this happens often (big copies or checkouts inside the project), raise the queue size: "+
		"sudo sysctl fs.inotify.max_queued_events=65536 "+
		"(to keep it after a reboot: echo fs.inotify.max_queued_events=65536 | sudo tee /etc/sysctl.d/90-kiln-inotify.conf)",
		limitValue("max_queued_events"))
}

// watchLimitWarning explains a failed watch because of the per-user watch
// limit, and that kiln polls the folders it could not watch.
func watchLimitWarning(dir string, unwatched int, poll string) string {
	if runtime.GOOS != "linux" {
		return fmt.Sprintf("warning: cannot watch %s: the system's limit on watched folders is reached; kiln checks %d unwatched folder(s) for changes every %s instead", dir, unwatched, poll)
	}
	return fmt.Sprintf("warning: cannot watch %s: the per-user limit on watched folders is reached (fs.inotify.%s; every program that watches files, such as editors and other watchers, counts against it). "+
		"kiln now checks the %d folder(s) it could not watch for changes every %s, which is slower. "+
		"To raise the limit: sudo sysctl fs.inotify.max_user_watches=524288 "+
		"(to keep it after a reboot: echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-kiln-inotify.conf), then restart kiln watch",
		dir, limitValue("max_user_watches"), unwatched, poll)
}

// instanceLimitError wraps the error of creating a watcher when the limit
// of inotify instances is reached.
func instanceLimitError(err error) error {
	return fmt.Errorf("start watching files: %w: the per-user limit on file watchers is reached (fs.inotify.%s; each running watcher, editor or file manager uses some); "+
		"close other watchers or raise it: sudo sysctl fs.inotify.max_user_instances=1024", err, limitValue("max_user_instances"))
}
