package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/kiln-dev/kiln/internal/httprange"
	"github.com/kiln-dev/kiln/internal/safepath"
)

// ChecksumError reports a downloaded file whose sha256 is not the one the
// catalogue or manifest gives. Its data has been deleted when the error is
// returned.
type ChecksumError struct {
	// Path is the file's path inside the model folder.
	Path string
	// Want is the expected sha256, Got the one the data had (hex).
	Want, Got string

	resumed bool // the data began with an earlier run's partial download
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s is corrupt: expected sha256 %s, got %s; the downloaded data was deleted: pull again, and if the same hash comes back the server's copy or the catalogue entry is wrong", e.Path, e.Want, e.Got)
}

// errStalled cancels a transfer that has received nothing for
// StallTimeout.
var errStalled = errors.New("stalled")

// copyBuffer is the read size of a transfer; progress is reported per
// read.
const copyBuffer = 256 << 10

// fetchFile makes staging/f.Path a verified copy of f: a file an earlier
// run finished, the shared download cache's copy, or a download, resuming
// a partial one and retrying transient failures. A file listed without a
// sha256 (a small file of a first hf: pull) has the one its download
// computed recorded in p.sums.
func (p *puller) fetchFile(ctx context.Context, f File) error {
	// Nothing in the staging folder is written through a symlink.
	op := "write " + f.Path
	final, err := safepath.JoinNoLinks(p.staging, f.Path, op)
	if err != nil {
		return err
	}
	if err := safepath.MkdirAll(p.staging, filepath.Dir(final), op); err != nil {
		return err
	}
	bar := p.prog.file(f)
	// A file an earlier run finished is kept if it still verifies.
	if st, err := os.Lstat(final); err == nil {
		if st.Mode().IsRegular() && st.Size() == f.Size && f.SHA256 != "" {
			sum, err := p.keptSum(ctx, f, final)
			if err == nil && sum == f.SHA256 {
				bar.set(f.Size)
				bar.done("already downloaded")
				if p.cache != nil {
					p.cache.put(final, f.Size, sum)
				}
				return nil
			}
			if ctx.Err() != nil {
				bar.fail()
				return ctx.Err()
			}
		}
		if err := os.RemoveAll(final); err != nil {
			bar.fail()
			return fmt.Errorf("remove stale %s: %w", final, err)
		}
	}
	if f.SHA256 != "" && p.cache != nil {
		how, err := p.cache.get(ctx, f, final, p.staging)
		switch {
		case err != nil:
			bar.fail()
			return err
		case how != "":
			bar.set(f.Size)
			bar.done(how)
			return nil
		}
	}

	retries := p.opts.Retries
	if retries == 0 {
		retries = DefaultRetries
	}
	delay := p.opts.RetryDelay
	if delay == 0 {
		delay = DefaultRetryDelay
	}
	restarted := false
	for attempt := 0; ; attempt++ {
		sum, err := p.transfer(ctx, f, final, bar)
		if err == nil {
			bar.done("")
			if f.SHA256 == "" {
				p.mu.Lock()
				p.sums[f.Path] = sum
				p.mu.Unlock()
			}
			if p.cache != nil {
				p.cache.put(final, f.Size, sum)
			}
			return nil
		}
		if ctx.Err() != nil {
			bar.fail()
			return ctx.Err()
		}
		var ce *ChecksumError
		if errors.As(err, &ce) && ce.resumed && !restarted {
			// The earlier run's data may be what is wrong (a different
			// revision, a crash): try once more from nothing.
			restarted = true
			p.prog.note("%s: the resumed download did not verify; downloading it again from the start", f.Path)
			continue
		}
		if !isRetryable(err) || attempt >= retries {
			bar.fail()
			return err
		}
		wait := time.Duration(0)
		if delay > 0 {
			wait = min(delay<<attempt, 30*time.Second)
		}
		p.prog.note("%v; retrying in %s (attempt %d of %d)", err, wait, attempt+2, retries+1)
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				bar.fail()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// transfer continues final+".part" from its current length and, once it
// has f.Size bytes with the right hash, renames it to final (a rename
// replaces a name and never follows a symlink). It returns the file's
// sha256. Transient failures come back as retryableError with the data
// kept.
func (p *puller) transfer(ctx context.Context, f File, final string, bar fileBar) (string, error) {
	// Never through a symlink, never a named pipe or device. JoinNoLinks
	// checks with Lstat (all there is where the system has no
	// O_NOFOLLOW), OpenFile refuses a link that appeared since.
	op := "write " + f.Path
	part, err := safepath.JoinNoLinks(p.staging, f.Path+partSuffix, op)
	if err != nil {
		return "", err
	}
	out, err := safepath.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644, op)
	if err != nil {
		return "", err
	}
	defer func() {
		if out != nil {
			out.Close()
		}
	}()
	st, err := out.Stat()
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", part, err)
	}
	have := st.Size()
	if have > f.Size {
		if err := out.Truncate(0); err != nil {
			return "", fmt.Errorf("truncate %s: %w", part, err)
		}
		have = 0
	}
	var got fetched
	if p.hub != nil {
		got, err = p.hubFetch(ctx, f, out, have, bar)
	} else {
		got, err = p.urlFetch(ctx, f, out, have, bar)
	}
	if err != nil {
		return "", err
	}
	if f.SHA256 != "" && got.sum != f.SHA256 {
		out.Close()
		out = nil
		bar.set(0)
		if err := safepath.RemoveFile(part, "remove the corrupt download of "+f.Path); err != nil {
			return "", fmt.Errorf("%s is corrupt (expected sha256 %s, got %s) and removing it failed: %w", f.Path, f.SHA256, got.sum, err)
		}
		return "", &ChecksumError{Path: f.Path, Want: f.SHA256, Got: got.sum, resumed: got.resumed}
	}
	if err := out.Sync(); err != nil {
		return "", fmt.Errorf("flush %s: %w", part, err)
	}
	if err := out.Close(); err != nil {
		out = nil
		return "", fmt.Errorf("close %s: %w", part, err)
	}
	out = nil
	if err := os.Rename(part, final); err != nil {
		return "", fmt.Errorf("rename %s: %w", part, err)
	}
	return got.sum, nil
}

// fetched is what a transfer produced: the sha256 of the whole file and
// whether its data began with an earlier run's partial download.
type fetched struct {
	sum     string
	resumed bool
}

// urlFetch continues out, which holds have bytes of f, from the pull's
// base URL, hashing the bytes already there and those that arrive.
func (p *puller) urlFetch(ctx context.Context, f File, out *os.File, have int64, bar fileBar) (fetched, error) {
	h := sha256.New()
	if have > 0 {
		if _, err := io.Copy(h, ctxReader{ctx, io.NewSectionReader(out, 0, have)}); err != nil {
			if ctx.Err() != nil {
				return fetched{}, ctx.Err()
			}
			return fetched{}, fmt.Errorf("read %s: %w", out.Name(), err)
		}
	}
	resumedFrom := have
	bar.set(have)
	if have < f.Size {
		if have > 0 {
			p.prog.note("%s: resuming at %s of %s", f.Path, formatBytes(have), formatBytes(f.Size))
		}
		start, err := p.get(ctx, f, out, have, h, bar)
		if err != nil {
			return fetched{}, err
		}
		if start == 0 {
			resumedFrom = 0 // the server sent the whole file
		}
	}
	return fetched{sum: hex.EncodeToString(h.Sum(nil)), resumed: resumedFrom > 0}, nil
}

// get requests the file from offset have and appends the body to out and
// h. It returns the offset it started writing at (0 when the server
// ignored the range and sent the whole file).
func (p *puller) get(ctx context.Context, f File, out *os.File, have int64, h hash.Hash, bar fileBar) (int64, error) {
	u := fileURL(p.base, f.Path)
	stall := p.opts.StallTimeout
	if stall <= 0 {
		stall = DefaultStallTimeout
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer timer.Stop()

	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", f.Path, err)
	}
	// Ranges count bytes of the representation, so ask for it unencoded.
	req.Header.Set("Accept-Encoding", "identity")
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	if p.opts.Authorize != nil {
		p.opts.Authorize(req)
	}
	resp, err := p.opts.client().Do(req)
	if err != nil {
		return 0, p.netError(ctx, rctx, f, u.String(), have, err, stall)
	}
	defer resp.Body.Close()
	p.log.Debug("download", "file", f.Path, "url", u.String(), "from", have, "status", resp.StatusCode, "length", resp.ContentLength)

	start := have
	switch resp.StatusCode {
	case http.StatusPartialContent:
		first, total, ok := httprange.Parse(resp.Header.Get("Content-Range"))
		if ok && total >= 0 && total != f.Size {
			return 0, fmt.Errorf("download %s from %s: the server's file is %d bytes, the model's file list says %d: the catalogue entry or manifest is out of date", f.Path, u, total, f.Size)
		}
		if !ok || first != have {
			if err := restart(out, h, bar); err != nil {
				return 0, err
			}
			return 0, &retryableError{fmt.Errorf("download %s from %s: the server answered with the range %q instead of bytes %d-", f.Path, u, resp.Header.Get("Content-Range"), have)}
		}
		if have > 0 {
			p.mu.Lock()
			if !slices.Contains(p.resumed, f.Path) {
				p.resumed = append(p.resumed, f.Path)
			}
			p.mu.Unlock()
		}
	case http.StatusOK:
		if have > 0 {
			p.prog.note("%s: the server does not resume downloads (it ignored the range request); downloading it again from the start", f.Path)
			if err := restart(out, h, bar); err != nil {
				return 0, err
			}
			start = 0
		}
		if resp.ContentLength >= 0 && resp.ContentLength != f.Size {
			return 0, fmt.Errorf("download %s from %s: the server's file is %d bytes, the model's file list says %d: the catalogue entry or manifest is out of date", f.Path, u, resp.ContentLength, f.Size)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if err := restart(out, h, bar); err != nil {
			return 0, err
		}
		return 0, &retryableError{fmt.Errorf("download %s from %s: the server cannot resume at byte %d (HTTP 416); starting it again", f.Path, u, have)}
	default:
		return 0, statusError("model file "+f.Path+" from", u, resp.StatusCode)
	}

	if _, err := out.Seek(start, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek %s: %w", out.Name(), err)
	}
	buf := make([]byte, copyBuffer)
	pos := start
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			timer.Reset(stall)
			if pos+int64(n) > f.Size {
				return 0, fmt.Errorf("download %s from %s: the server sent more than the %d bytes the model's file list gives: the catalogue entry or manifest is out of date", f.Path, u, f.Size)
			}
			if _, err := out.Write(buf[:n]); err != nil {
				if errors.Is(err, syscall.ENOSPC) {
					return 0, fmt.Errorf("write %s: the disk is full: the model needs %s more; free space and pull again to resume", out.Name(), formatBytes(f.Size-pos))
				}
				return 0, fmt.Errorf("write %s: %w", out.Name(), err)
			}
			h.Write(buf[:n])
			pos += int64(n)
			p.fetched.Add(int64(n))
			bar.add(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, p.netError(ctx, rctx, f, u.String(), pos, rerr, stall)
		}
	}
	if pos < f.Size {
		return 0, &retryableError{fmt.Errorf("download %s: the connection closed after %s of %s", f.Path, formatBytes(pos), formatBytes(f.Size))}
	}
	return start, nil
}

// netError classifies a failed request or read: the caller's cancellation
// as is, everything else as a transient failure.
func (p *puller) netError(ctx, rctx context.Context, f File, u string, pos int64, err error, stall time.Duration) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(context.Cause(rctx), errStalled) {
		return &retryableError{fmt.Errorf("download %s: no data received for %s (at %s of %s)", f.Path, stall, formatBytes(pos), formatBytes(f.Size))}
	}
	msg := err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "the connection closed early"
	}
	return &retryableError{fmt.Errorf("download %s from %s: %s (at %s of %s)", f.Path, u, msg, formatBytes(pos), formatBytes(f.Size))}
}

// restart empties a partial file and its hash.
func restart(out *os.File, h hash.Hash, bar fileBar) error {
	if err := out.Truncate(0); err != nil {
		return fmt.Errorf("truncate %s: %w", out.Name(), err)
	}
	h.Reset()
	bar.set(0)
	return nil
}

// formatBytes prints a size in binary units ("1.5 GiB").
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
