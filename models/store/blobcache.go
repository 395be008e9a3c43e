package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/models"
)

// BlobsDir is the download cache's folder inside kiln's cache folder:
// every file a pull verified is kept there as sha256/<hex>, whatever
// project or model it came with, so another project (or a second clone)
// pulling the same file takes it from there instead of the network.
const BlobsDir = "blobs"

// blobCache is the download cache shared by projects. Blobs are named by
// their SHA-256 and read-only; a pull links one into the project (or
// copies it where the cache is on another file system) only after
// checking its hash (remembered in the hash cache, so unchanged blobs are
// not read again). The cache is an optimisation: any failure to read or
// write it only costs a download.
type blobCache struct {
	dir    string // <cache>/blobs
	hashes *models.HashCache
	log    *slog.Logger
}

// path is where the blob of sum lives.
func (c *blobCache) path(sum string) string { return filepath.Join(c.dir, "sha256", sum) }

// get makes final (which does not exist) f's content from the cache: a
// hard link to the blob where the cache is on the same file system, else
// a copy through final+".part" in staging, checked as it is written. It
// returns how the file came (for the progress line), or "" when the
// cache has no good copy; the error is only ctx's.
func (c *blobCache) get(ctx context.Context, f File, final, staging string) (string, error) {
	blob := c.path(f.SHA256)
	fi, err := os.Lstat(blob)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
		return "", nil
	}
	sum, _, err := c.hashes.SHA256(ctx, blob)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if err != nil || sum != f.SHA256 {
		// Damaged (or changed through a hard link in some project):
		// drop it so the download that follows can replace it.
		c.log.Warn("download cache: dropping a damaged file", "file", blob, "error", err, "sha256", sum)
		os.Remove(blob)
		return "", nil
	}
	// A hard link never follows a symlink at either name and fails if
	// final exists.
	if err := os.Link(blob, final); err == nil {
		return "from the download cache", nil
	}
	if err := c.copyOut(ctx, blob, f, final, staging); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		c.log.Warn("download cache: cannot copy a file out", "file", blob, "error", err)
		return "", nil
	}
	return "copied from the download cache", nil
}

// copyOut copies the blob into staging as final, through final+".part"
// (never through a symlink), checking its hash on the way.
func (c *blobCache) copyOut(ctx context.Context, blob string, f File, final, staging string) error {
	op := "write " + f.Path
	part, err := safepath.JoinNoLinks(staging, f.Path+partSuffix, op)
	if err != nil {
		return err
	}
	out, err := safepath.OpenFile(part, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644, op)
	if err != nil {
		return err
	}
	in, err := os.Open(blob)
	if err != nil {
		out.Close()
		return err
	}
	defer in.Close()
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), ctxReader{ctx, in})
	if err == nil && hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		err = fmt.Errorf("%s changed while it was copied", blob)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(part, final)
	}
	if err != nil {
		os.Remove(part) // a partial copy is no download to resume
	}
	return err
}

// put keeps the verified file at final (size bytes with hash sum) in the
// cache, linked where the file systems allow, else copied. The blob is
// made read-only, and so, being the same file, is a linked project copy:
// writing into it in place would change every project's.
func (c *blobCache) put(final string, size int64, sum string) {
	blob := c.path(sum)
	if fi, err := os.Lstat(blob); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
		return
	}
	if err := c.store(final, blob); err != nil {
		c.log.Warn("download cache: cannot keep a downloaded file", "file", final, "cache", c.dir, "error", err)
		return
	}
	if fi, err := os.Lstat(blob); err == nil {
		c.hashes.Remember(blob, fi, sum)
	}
}

// store puts final's content at blob through a temporary name, so a
// reader never sees a partial blob.
func (c *blobCache) store(final, blob string) error {
	dir := filepath.Dir(blob)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	tmp.Close()
	os.Remove(name)
	if err := os.Link(final, name); err != nil {
		if err := copyFile(final, name); err != nil {
			os.Remove(name)
			return err
		}
	}
	if err := os.Chmod(name, 0o444); err != nil {
		os.Remove(name)
		return err
	}
	if err := os.Rename(name, blob); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// copyFile copies the regular file from into a new file to.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
