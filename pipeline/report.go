package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status is what happened to a stage in a build.
type Status string

// The statuses a stage can end a build with.
const (
	// StatusBuilt: the stage ran and its result was stored in the cache.
	StatusBuilt Status = "built"
	// StatusCached: the stage's key was in the cache; its outputs were
	// materialised (restored if missing) without running it.
	StatusCached Status = "cached"
	// StatusRemote: the stage's key was not in the local cache but in the
	// remote cache (Options.Remote); its outputs were downloaded, checked
	// against their SHA-256, stored in the local cache and published,
	// without running it.
	StatusRemote Status = "remote"
	// StatusFailed: the stage (or preparing it, e.g. hashing a missing
	// source file, or publishing its outputs) failed.
	StatusFailed Status = "failed"
	// StatusSkipped: the stage did not start, because a dependency failed,
	// the build stopped after a failure, or the build was interrupted.
	StatusSkipped Status = "skipped"
	// StatusInterrupted: the stage was running when the build was
	// cancelled; nothing it wrote was kept.
	StatusInterrupted Status = "interrupted"
	// StatusStale: (check mode) the stage's key is not in the cache, a
	// published output is missing or modified, or a dependency is stale.
	StatusStale Status = "stale"
	// StatusWouldBuild: (dry-run mode) the stage would run.
	StatusWouldBuild Status = "would-build"
)

// Duration is a time.Duration that encodes in JSON as milliseconds (a
// number with microsecond precision), which is what report readers want.
type Duration time.Duration

// MarshalJSON encodes d as milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	ms := float64(time.Duration(d).Microseconds()) / 1000
	return json.Marshal(ms)
}

// UnmarshalJSON decodes milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("duration in milliseconds: %w", err)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// String formats d like time.Duration, rounded for humans.
func (d Duration) String() string {
	t := time.Duration(d)
	switch {
	case t >= time.Second:
		return t.Round(10 * time.Millisecond).String()
	case t >= time.Millisecond:
		return t.Round(100 * time.Microsecond).String()
	}
	return t.String()
}

// OutputReport describes one output file of a stage.
type OutputReport struct {
	// Name is the output's name within the stage.
	Name string `json:"name"`
	// Path is where it was published, relative to the output folder, or
	// empty when the output lives only in the cache.
	Path string `json:"path,omitempty"`
	// SHA256 is the hex content hash (the blob's name in the cache).
	SHA256 string `json:"sha256"`
	// Size is the size in bytes.
	Size int64 `json:"size"`
}

// StageError is a stage's failure: what went wrong and the manifest
// position of the entry that produced the stage.
type StageError struct {
	// Message says what went wrong and, where kiln knows, what to do.
	Message string `json:"message"`
	// Where is "file:line:col" of the manifest entry, when known.
	Where string `json:"where,omitempty"`
}

// Error formats the failure as "where: message".
func (e *StageError) Error() string {
	if e.Where == "" {
		return e.Message
	}
	return e.Where + ": " + e.Message
}

// StageReport is what happened to one stage.
type StageReport struct {
	// ID, Asset and Kind identify the stage (see Stage).
	ID    string `json:"id"`
	Asset string `json:"asset"`
	Kind  string `json:"kind"`
	// Status is what happened to it.
	Status Status `json:"status"`
	// Started is when a worker took the stage up (zero, and left out of
	// the JSON, for a stage decided without one: skipped because a
	// dependency failed, or would-build behind one that would).
	Started time.Time `json:"started,omitzero"`
	// Queue is the time the stage waited, after Started, for an executor
	// slot (a CPU job or its device) or for a stage with the same key to
	// finish: time it did no work of its own, which stages running in
	// parallel share. Queue plus Duration is the stage's wall time.
	Queue Duration `json:"queue_ms"`
	// Duration is the stage's own work: hashing its inputs, looking it up
	// in the caches, running it, storing and publishing its outputs. It
	// leaves Queue out, so the durations of stages that ran one at a
	// time on a device add up to at most the build's.
	Duration Duration `json:"run_ms"`
	// Generation is what a generated (diffusion) stage makes its image
	// from: seed, steps, model and its fingerprint, execution provider
	// class. Nil for other stages.
	Generation *Generation `json:"generation,omitempty"`
	// Key is the stage's cache key (hex), when it could be computed.
	Key string `json:"key,omitempty"`
	// Outputs are the stage's outputs when known (built or cached).
	Outputs []OutputReport `json:"outputs,omitempty"`
	// Error is set for failed and interrupted stages.
	Error *StageError `json:"error,omitempty"`
	// Notes are the facts the stage recorded with Run.Note when it ran
	// (kept in the cache, so cached stages report them too).
	Notes map[string]string `json:"notes,omitempty"`
	// Reasons say why the stage ran, would run, or is stale (which part
	// of its key changed, a missing output, ...). They are filled for
	// stages that did or would do work when Options.Explain, DryRun or
	// Check is set, and always for skipped stages.
	Reasons []string `json:"reasons,omitempty"`
}

// ReportSchemaVersion is Report.SchemaVersion: it changes whenever a
// field of the JSON report is removed or changes meaning (adding one does
// not change it). Reports without the field are version 1: a stage's
// duration_ms then included its queue time. ReportSchema describes the
// current version.
const ReportSchemaVersion = 2

// Report is the result of a build, serialisable as JSON for --json.
type Report struct {
	// SchemaVersion is ReportSchemaVersion, so a reader can tell which
	// fields it holds and what they mean.
	SchemaVersion int `json:"schema_version"`
	// Mode is "build", "dry-run" or "check".
	Mode string `json:"mode"`
	// Root, OutDir and CacheDir are the absolute folders used.
	Root     string `json:"root"`
	OutDir   string `json:"out_dir"`
	CacheDir string `json:"cache_dir"`
	// Started is when the build began; Duration how long it took.
	Started  time.Time `json:"started"`
	Duration Duration  `json:"duration_ms"`
	// Interrupted is set when the build's context was cancelled.
	Interrupted bool `json:"interrupted,omitempty"`
	// Stages are the selected stages in dependency order.
	Stages []StageReport `json:"stages"`
	// Totals counts stages per status.
	Totals map[Status]int `json:"totals"`
	// Orphans are files (relative to the output folder) that an earlier
	// build published and no stage publishes any more. kiln leaves them in
	// place (an engine project may reference them); Clean removes them.
	Orphans []string `json:"orphans,omitempty"`
	// FilesHashed counts source files, published outputs and cache blobs
	// that had to be read and hashed to verify them, because their stat
	// did not match what kiln recorded. An unchanged project hashes none.
	FilesHashed int `json:"files_hashed"`
	// Remote is what the build did with the remote cache; nil without
	// one (or in dry-run and check modes, which do not use it).
	Remote *RemoteReport `json:"remote,omitempty"`
	// Shard is the part of the work this build took (Options.Shard);
	// nil when the build was not sharded.
	Shard *ShardReport `json:"shard,omitempty"`
}

// Stage returns the report of stage id, or nil.
func (r *Report) Stage(id string) *StageReport {
	for i := range r.Stages {
		if r.Stages[i].ID == id {
			return &r.Stages[i]
		}
	}
	return nil
}

// Summary is a one-line account such as
// "1000 stages: 3 built, 997 cached in 41ms".
func (r *Report) Summary() string {
	var parts []string
	for _, s := range []Status{StatusBuilt, StatusRemote, StatusCached, StatusWouldBuild, StatusStale, StatusFailed, StatusInterrupted, StatusSkipped} {
		if n := r.Totals[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing to do")
	}
	s := fmt.Sprintf("%d stages: %s in %s", len(r.Stages), strings.Join(parts, ", "), r.Duration)
	if r.Interrupted {
		s += " (interrupted)"
	}
	if r.Shard != nil {
		s += fmt.Sprintf("; shard %d/%d: %d of %d diffusion stages", r.Shard.Index, r.Shard.Count, r.Shard.Stages, r.Shard.TotalStages)
	}
	if r.Remote != nil {
		s += "; remote cache: " + r.Remote.summary()
	}
	if len(r.Orphans) > 0 {
		s += fmt.Sprintf("; %d outputs no longer produced (kiln clean removes them)", len(r.Orphans))
	}
	return s
}

// Progress receives build events to display. The executor never calls it
// concurrently, so implementations need no locking; they should return
// quickly.
type Progress interface {
	// Start is called once with the number of selected stages.
	Start(total int)
	// StageStart is called when a stage is about to run (not for stages
	// found in the cache).
	StageStart(id string)
	// StageStep reports steps done of total within a running stage.
	StageStep(id string, done, total int)
	// StageDone is called once per selected stage, whatever its status.
	StageDone(r StageReport)
	// Done is called once at the end with the full report.
	Done(r *Report)
}

// LineProgress is a Progress for logs and non-terminals: one line per
// stage that ran, failed, was skipped or would run (cached stages are
// counted silently), step lines at most every StepEvery per stage, and a
// summary at the end.
type LineProgress struct {
	w     io.Writer
	total int
	done  int
	// StepEvery is the least time between two step lines of one stage.
	StepEvery time.Duration
	lastStep  map[string]time.Time
	now       func() time.Time
}

// NewLineProgress returns a LineProgress writing to w, with step lines at
// most every two seconds per stage.
func NewLineProgress(w io.Writer) *LineProgress {
	return &LineProgress{w: w, StepEvery: 2 * time.Second, lastStep: map[string]time.Time{}, now: time.Now}
}

// Start implements Progress.
func (p *LineProgress) Start(total int) { p.total = total }

// StageStart implements Progress.
func (p *LineProgress) StageStart(id string) {
	fmt.Fprintf(p.w, "start %s\n", id)
}

// StageStep implements Progress.
func (p *LineProgress) StageStep(id string, done, total int) {
	now := p.now()
	if last, ok := p.lastStep[id]; ok && now.Sub(last) < p.StepEvery && done < total {
		return
	}
	p.lastStep[id] = now
	fmt.Fprintf(p.w, "      %s: step %d/%d\n", id, done, total)
}

// StageDone implements Progress.
func (p *LineProgress) StageDone(r StageReport) {
	p.done++
	delete(p.lastStep, r.ID)
	if r.Status == StatusCached && len(r.Reasons) == 0 {
		return
	}
	width := len(fmt.Sprint(p.total))
	prefix := fmt.Sprintf("[%*d/%d] %s %s", width, p.done, p.total, r.Status, r.ID)
	switch {
	case r.Error != nil:
		fmt.Fprintf(p.w, "%s: %s\n", prefix, r.Error)
	case r.Status == StatusBuilt || r.Status == StatusRemote:
		// With --explain, the reasons follow the time it took.
		line := fmt.Sprintf("%s (%s)", prefix, r.Duration)
		if len(r.Reasons) > 0 {
			line += ": " + strings.Join(r.Reasons, "; ")
		}
		fmt.Fprintln(p.w, line)
	default:
		if len(r.Reasons) > 0 {
			fmt.Fprintf(p.w, "%s: %s\n", prefix, strings.Join(r.Reasons, "; "))
		} else {
			fmt.Fprintln(p.w, prefix)
		}
	}
}

// Done implements Progress.
func (p *LineProgress) Done(r *Report) {
	fmt.Fprintln(p.w, r.Summary())
	for _, o := range r.Orphans {
		fmt.Fprintf(p.w, "  no longer produced: %s\n", o)
	}
}

// syncProgress serialises calls to a Progress and tolerates nil.
type syncProgress struct {
	mu sync.Mutex
	p  Progress
}

func (s *syncProgress) start(total int) {
	if s.p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.Start(total)
}

func (s *syncProgress) stageStart(id string) {
	if s.p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.StageStart(id)
}

func (s *syncProgress) stageStep(id string, done, total int) {
	if s.p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.StageStep(id, done, total)
}

func (s *syncProgress) stageDone(r StageReport) {
	if s.p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.StageDone(r)
}

func (s *syncProgress) done(r *Report) {
	if s.p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.Done(r)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
