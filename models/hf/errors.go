package hf

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors a caller may want to tell apart with errors.Is. The errors the
// Client returns wrap them inside a message saying what to do.
var (
	// ErrGated: the repository is gated and the request had no token, or
	// one whose owner has not accepted the repository's licence.
	ErrGated = errors.New("gated repository")
	// ErrRepoNotFound: the repository does not exist, or it is private
	// and the token (if any) has no access; the Hub does not tell which.
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRevisionNotFound: the repository has no such branch, tag or
	// commit.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrEntryNotFound: the revision has no such file or folder.
	ErrEntryNotFound = errors.New("file not found")
	// ErrUnauthorized: the Hub rejected the token itself (invalid or
	// expired).
	ErrUnauthorized = errors.New("invalid token")
	// ErrNoONNX: the repository folder holds no ONNX export kiln can run
	// (typically only PyTorch or safetensors weights).
	ErrNoONNX = errors.New("no ONNX model")
	// ErrChanged: the Hub serves a file different from the one a lock
	// recorded (another size or SHA-256), or resolves the pinned commit
	// to another one.
	ErrChanged = errors.New("file changed on the Hub")
	// ErrTruncated: transfers kept ending before the whole file arrived,
	// and the retries ran out.
	ErrTruncated = errors.New("truncated download")
)

// HubError is an HTTP error answer of the Hub (or of the CDN a download
// was redirected to). Its message says what is missing or refused and
// what to do; errors.Is matches it against ErrGated, ErrRepoNotFound,
// ErrRevisionNotFound, ErrEntryNotFound or ErrUnauthorized when the
// answer was one of those.
type HubError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the Hub's X-Error-Code header, such as "GatedRepo",
	// "RepoNotFound", "RevisionNotFound" or "EntryNotFound"; "" when
	// absent.
	Code string
	// ServerMessage is the Hub's own explanation (X-Error-Message, else
	// the "error" field of a JSON body); "" when absent.
	ServerMessage string
	// URL is the URL requested, without credentials.
	URL string

	msg  string
	kind error
}

// Error returns the actionable message, followed by the Hub's own words
// when it sent some.
func (e *HubError) Error() string {
	if e.ServerMessage == "" || strings.Contains(e.msg, e.ServerMessage) {
		return e.msg
	}
	return fmt.Sprintf("%s (the Hub says: %s)", e.msg, e.ServerMessage)
}

// Unwrap returns the sentinel error the answer stands for, or nil.
func (e *HubError) Unwrap() error { return e.kind }

// ChecksumError reports downloaded data whose hash is not the expected
// one. The data written to the target is not a valid prefix of the file:
// the caller should delete it.
type ChecksumError struct {
	// Path is the file's path inside the model folder.
	Path string
	// Algorithm is "sha256", or "git-sha1" for a small file checked
	// against its git blob id from the tree listing.
	Algorithm string
	// Want is the expected hash, Got the data's (hex).
	Want, Got string
}

// Error says which file is corrupt and what to do.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s is corrupt: expected %s %s, got %s; delete the downloaded data and pull again, and if the same hash comes back the Hub's copy or the lock is wrong", e.Path, e.Algorithm, e.Want, e.Got)
}

// kindError is a message standing for one of the sentinel errors without
// repeating its text.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// withKind makes an error with the formatted message that errors.Is
// matches against kind.
func withKind(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// transientError marks a failure worth another attempt; after is the wait
// the server asked for, negative when it asked for none.
type transientError struct {
	err   error
	after time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err: err, after: -1} }

// sanitize shortens a server-sent message and drops control characters,
// so a hostile server cannot rewrite the terminal.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}
