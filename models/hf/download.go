package hf

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-dev/kiln/internal/httprange"
)

// copyBuffer is the read size of a transfer.
const copyBuffer = 256 << 10

// Target is where Download writes a file; an *os.File opened for reading
// and writing is one. Download writes the file's bytes at their offsets
// (so the end of the latest write is the progress) and, when resuming,
// reads back the bytes before the offset to hash them.
type Target interface {
	io.WriterAt
	io.ReaderAt
}

// Result is what Download produced: with the File's Path and Size, what a
// lock records.
type Result struct {
	// SHA256 is the file's SHA-256 in lower-case hex, computed over the
	// data (and, for LFS files, equal to File.SHA256); "" on failure.
	SHA256 string
	// Size is the number of valid bytes at the start of the target: the
	// file's size on success; after a failure the offset a later call can
	// resume from (0 when the data must be discarded).
	Size int64
	// Resumed reports that the bytes before the offset were kept (the
	// server honoured the range request and the whole file verified).
	Resumed bool
}

// Download writes f, a file of s pinned to s.Commit, to dst. With offset
// > 0, dst already holds the file's first offset bytes (a partial
// download): they are hashed and the rest is requested with
// "Range: bytes=offset-"; a server ignoring the range makes Download
// write the file again from the start.
//
// Each attempt first asks the Hub (HEAD on the file's resolve URL) what it
// serves: a size, an LFS SHA-256 or a commit other than s records is
// reported as ErrChanged before anything is written. The data then comes
// from where the Hub redirects (the CDN, for LFS files), without the
// token. A lost connection, a stall, a truncated body, HTTP 408, 429 or
// 5xx is retried (after the Retry-After the server asks for, else a
// doubling delay), resuming where the data stopped.
//
// The data is checked against f.SHA256 (or the Hub's LFS SHA-256) and
// f.GitOID when they are known; a mismatch is a *ChecksumError, after one
// more download from the start when part of the data came from an earlier
// transfer. The SHA-256 is returned either way, so the caller can record
// the one of a small file.
func (c *Client) Download(ctx context.Context, s *Snapshot, f File, dst Target, offset int64) (Result, error) {
	if err := checkDownload(s, f, offset); err != nil {
		return Result{}, err
	}
	if dst == nil {
		return Result{}, fmt.Errorf("download %s: no target to write to", f.Path)
	}
	d := &transfer{
		c: c, s: s, f: f, dst: dst,
		want:     strings.ToLower(f.SHA256),
		gitOID:   strings.ToLower(f.GitOID),
		repoPath: path.Join(s.Ref.Subfolder, f.Path),
		sha:      sha256.New(),
	}
	if d.gitOID != "" {
		d.git = sha1.New()
	}
	d.reset()
	if offset > 0 {
		if err := d.hashPrefix(ctx, offset); err != nil {
			return Result{}, err
		}
	}
	err := c.retry(ctx, f.Path, func() error { return d.attempt(ctx) })
	if err != nil {
		var ce *ChecksumError
		if !errors.As(err, &ce) && ctx.Err() == nil {
			err = fmt.Errorf("download %s of %s: %w", f.Path, s.Ref, err)
		}
		return Result{Size: d.have}, err
	}
	return Result{SHA256: d.sum, Size: f.Size, Resumed: offset > 0 && !d.restarted}, nil
}

// checkDownload rejects arguments no download can satisfy.
func checkDownload(s *Snapshot, f File, offset int64) error {
	if s == nil || !commitRE.MatchString(s.Commit) {
		return errors.New("download: the snapshot has no commit id: resolve the reference first (or fix the lock's commit)")
	}
	if _, err := ParseRef(s.Ref.String()); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if err := checkRelPath(f.Path); err != nil {
		return fmt.Errorf("download from %s: %w", s.Ref, err)
	}
	if f.Size < 0 {
		return fmt.Errorf("download %s: negative size %d: fix the file list or lock", f.Path, f.Size)
	}
	if f.SHA256 != "" && !sha256RE.MatchString(strings.ToLower(f.SHA256)) {
		return fmt.Errorf("download %s: the sha256 %q is not 64 hex digits: fix the lock, or resolve %s again", f.Path, f.SHA256, s.Ref)
	}
	if f.GitOID != "" && !gitOIDRE.MatchString(strings.ToLower(f.GitOID)) {
		return fmt.Errorf("download %s: the git blob id %q is not 40 hex digits: resolve %s again", f.Path, f.GitOID, s.Ref)
	}
	if offset < 0 || offset > f.Size {
		return fmt.Errorf("download %s: cannot resume at byte %d of a %d-byte file: delete the partial data and download it again", f.Path, offset, f.Size)
	}
	return nil
}

// transfer is the state of one Download across its attempts.
type transfer struct {
	c        *Client
	s        *Snapshot
	f        File
	dst      Target
	repoPath string

	want   string // expected SHA-256; the Hub's LFS SHA-256 when f has none
	gitOID string // expected git blob id, "" when unknown

	sha hash.Hash
	git hash.Hash // nil without gitOID

	have      int64 // valid, hashed bytes at the start of dst
	lastStart int64 // where the latest attempt's own data began
	restarted bool  // the data was started again from byte 0
	rechecked bool  // a checksum mismatch already made it start again
	sum       string
}

// reset empties the hashes and the valid prefix.
func (d *transfer) reset() {
	d.have = 0
	d.sha.Reset()
	if d.git != nil {
		d.git.Reset()
		// A git blob id hashes "blob SIZE\x00" then the content.
		fmt.Fprintf(d.git, "blob %d\x00", d.f.Size)
	}
}

// restart makes the next transfer begin at byte 0.
func (d *transfer) restart() {
	d.reset()
	d.restarted = true
}

func (d *transfer) write(p []byte) {
	d.sha.Write(p)
	if d.git != nil {
		d.git.Write(p)
	}
}

// hashPrefix hashes the caller's partial data, dst's first n bytes.
func (d *transfer) hashPrefix(ctx context.Context, n int64) error {
	buf := make([]byte, copyBuffer)
	r := io.NewSectionReader(d.dst, 0, n)
	for d.have < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, err := io.ReadFull(r, buf[:min(int64(len(buf)), n-d.have)])
		d.write(buf[:k])
		d.have += int64(k)
		if err != nil {
			d.reset()
			return fmt.Errorf("download %s: read back the first %d bytes already downloaded: %w; delete the partial data and download it again", d.f.Path, n, err)
		}
	}
	return nil
}

// attempt asks the Hub what it serves, fetches what dst lacks and checks
// the result.
func (d *transfer) attempt(ctx context.Context) error {
	c := d.c
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(c.stall, func() { cancel(errStalled) })
	defer timer.Stop()

	m, err := c.head(ctx, rctx, d.s, d.f)
	if err != nil {
		return err
	}
	if err := d.check(m); err != nil {
		return err
	}
	d.lastStart = d.have
	if d.have < d.f.Size {
		timer.Reset(c.stall)
		if err := d.get(ctx, rctx, timer, m.get); err != nil {
			return err
		}
	}
	return d.verify()
}

// check compares what the Hub serves with what the file list (or lock)
// says.
func (d *transfer) check(m fileMeta) error {
	f, s := d.f, d.s
	if m.commit != "" && m.commit != s.Commit {
		return withKind(ErrChanged, "asked for %s at commit %s, the Hub answered for commit %s: a proxy or mirror serves another revision; check HF_ENDPOINT", d.repoPath, s.Commit, sanitize(m.commit))
	}
	if m.size >= 0 && m.size != f.Size {
		return withKind(ErrChanged, "%s at commit %s is %d bytes on the Hub, the file list or lock says %d: resolve %s again to record the current files", d.repoPath, s.Commit, m.size, f.Size, s.Ref)
	}
	if m.sha256 != "" {
		switch {
		case d.want == "":
			d.want = m.sha256
		case m.sha256 != d.want:
			return withKind(ErrChanged, "%s at commit %s has sha256 %s on the Hub, the file list or lock says %s: the lock is out of date or was edited; resolve %s again to record the current files", d.repoPath, s.Commit, m.sha256, d.want, s.Ref)
		}
	}
	return nil
}

// get requests the bytes dst lacks from u and writes them, hashing as it
// goes; every read resets the stall timer.
func (d *transfer) get(ctx, rctx context.Context, timer *time.Timer, u *url.URL) error {
	c, f := d.c, d.f
	hdr := http.Header{"Accept-Encoding": {"identity"}} // ranges count unencoded bytes
	if d.have > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(d.have, 10)+"-")
	}
	resp, at, err := c.follow(rctx, http.MethodGet, u, hdr, false)
	if err != nil {
		return c.requestError(ctx, rctx, "", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		first, total, ok := httprange.Parse(resp.Header.Get("Content-Range"))
		if ok && total >= 0 && total != f.Size {
			return withKind(ErrChanged, "%s is %d bytes on %s, the file list or lock says %d: resolve %s again", d.repoPath, total, at.Host, f.Size, d.s.Ref)
		}
		if !ok || first != d.have {
			d.restart()
			return transient(fmt.Errorf("%s answered the range %q instead of bytes %d-; downloading %s again from the start", at.Host, sanitize(resp.Header.Get("Content-Range")), d.have, f.Path))
		}
	case http.StatusOK:
		if d.have > 0 {
			c.log.Info("hf server ignored the range request; downloading again from the start", "file", f.Path, "host", at.Host, "had", d.have)
			d.restart()
		}
		if resp.ContentLength >= 0 && resp.ContentLength != f.Size {
			return withKind(ErrChanged, "%s is %d bytes on %s, the file list or lock says %d: resolve %s again", d.repoPath, resp.ContentLength, at.Host, f.Size, d.s.Ref)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		d.restart()
		return transient(fmt.Errorf("%s cannot resume %s at byte %d (HTTP 416); downloading it again from the start", at.Host, f.Path, d.have))
	default:
		err := c.statusError(resp, at, target{ref: d.s.Ref, rev: d.s.Commit, path: d.repoPath})
		var he *HubError
		if resp.StatusCode == http.StatusForbidden && !c.toEndpoint(at) && errors.As(err, &he) {
			// The CDN's signed URL expired: a new HEAD gets a fresh one.
			return transient(err)
		}
		return err
	}

	d.lastStart = d.have
	announced := resp.ContentLength
	buf := make([]byte, copyBuffer)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			timer.Reset(c.stall)
			if d.have+int64(n) > f.Size {
				return withKind(ErrChanged, "%s sent more than the %d bytes of %s the file list or lock gives: resolve %s again", at.Host, f.Size, d.repoPath, d.s.Ref)
			}
			if _, err := d.dst.WriteAt(buf[:n], d.have); err != nil {
				if errors.Is(err, syscall.ENOSPC) {
					return fmt.Errorf("write %s: the disk is full: %d more bytes are needed; free space and download again to resume", f.Path, f.Size-d.have)
				}
				return fmt.Errorf("write %s: %w", f.Path, err)
			}
			d.write(buf[:n])
			d.have += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			got := d.have - d.lastStart
			if ctx.Err() == nil && !errors.Is(context.Cause(rctx), errStalled) && errors.Is(rerr, io.ErrUnexpectedEOF) {
				return transient(withKind(ErrTruncated, "truncated body: %s announced %d bytes but the connection closed after %d (at %d of %d bytes of %s)", at.Host, announced, got, d.have, f.Size, f.Path))
			}
			return c.requestError(ctx, rctx, fmt.Sprintf("download %s from %s (at %d of %d bytes)", f.Path, at.Host, d.have, f.Size), rerr)
		}
	}
	if d.have < f.Size {
		return transient(withKind(ErrTruncated, "truncated body: the body from %s ended after %d bytes, at %d of %d bytes of %s", at.Host, d.have-d.lastStart, d.have, f.Size, f.Path))
	}
	return nil
}

// verify checks the complete data against the hashes known.
func (d *transfer) verify() error {
	sum := hex.EncodeToString(d.sha.Sum(nil))
	var ce *ChecksumError
	if d.want != "" && sum != d.want {
		ce = &ChecksumError{Path: d.f.Path, Algorithm: "sha256", Want: d.want, Got: sum}
	} else if d.git != nil {
		if g := hex.EncodeToString(d.git.Sum(nil)); g != d.gitOID {
			ce = &ChecksumError{Path: d.f.Path, Algorithm: "git-sha1", Want: d.gitOID, Got: g}
		}
	}
	if ce == nil {
		d.sum = sum
		return nil
	}
	if d.lastStart > 0 && !d.rechecked {
		// Part of the data came from an earlier transfer (the caller's
		// partial file, another run): it may be what is wrong.
		d.rechecked = true
		d.restart()
		d.c.log.Warn("hf resumed download did not verify; downloading again from the start", "file", d.f.Path)
		return &transientError{err: ce, after: 0}
	}
	d.reset()
	return ce
}
