package pipeline

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
)

// cleanRel normalises a published path as written in a stage.
func cleanRel(p string) string { return path.Clean(p) }

// publish materialises n's published outputs from the blob store into the
// output folder. Outputs that are already there (by stat record, else by
// hash) are not touched. It returns reasons for outputs it restored; a
// damaged blob gives an error wrapping errCorrupt.
func (b *builder) publish(ctx context.Context, n *node, outs outputSet) ([]string, error) {
	var restored []string
	for _, pub := range publishedPaths(n.st, outs) {
		name, rel := pub.name, pub.rel
		ref, ok := outs.get(name)
		if !ok {
			return restored, fmt.Errorf("stage has no output %q to publish at %s (it has: %s); this is a bug in the %s stage", name, rel, joinNames(outs.names()), n.st.Kind)
		}
		current, what := b.outputCurrent(n, rel, name, ref)
		if current {
			continue
		}
		if what == notRegular {
			if _, err := safepath.JoinNoLinks(b.o.OutDir, rel, "publish "+rel); err != nil {
				return restored, fmt.Errorf("publish %s: %w", rel, err)
			}
		}
		if what == notOurs || what == notRegular {
			abs := filepath.Join(b.o.OutDir, filepath.FromSlash(rel))
			return restored, fmt.Errorf("publish %s: %s %s, and kiln replaces only files it wrote itself; move it out of the output folder (or delete it), then build again", rel, abs, what)
		}
		if err := b.writeOutput(ctx, n, rel, name, ref); err != nil {
			return restored, err
		}
		if what == "outdated" {
			continue // a new version replacing the previous one
		}
		if what != "missing" || b.old.Stages[n.st.ID] != nil {
			n.log(b).Info("restored output from the cache", "path", rel, "was", what)
		}
		restored = append(restored, fmt.Sprintf("output %s %s; restored from the cache", rel, what))
	}
	return restored, nil
}

// What outputCurrent says of a file in the way that kiln must not replace.
const (
	notOurs    = "is in the way: kiln did not write it (the build state has no record of it) and it differs from what kiln built"
	notRegular = "is in the way: it is not a regular file"
)

// outputCurrent reports whether the published file at rel already holds
// ref, and if not, what is wrong with it ("missing", "modified outside
// kiln", ...). It hashes the file only when its stat does not match the
// record of the build that wrote it.
func (b *builder) outputCurrent(n *node, rel, name string, ref blobRef) (bool, string) {
	abs := filepath.Join(b.o.OutDir, filepath.FromSlash(rel))
	now := time.Now()
	mode, cur, err := b.dirs.stat(abs, false)
	if err != nil {
		if isNotExist(err) {
			return false, "missing"
		}
		return false, "unreadable (" + err.Error() + ")"
	}
	if !mode.IsRegular() {
		return false, notRegular
	}
	record := func(rec statRecord) {
		if b.readOnly {
			return
		}
		b.mu.Lock()
		b.outputs[rel] = outputRecord{Stage: n.st.ID, Name: name, statRecord: rec}
		b.mu.Unlock()
	}
	old, known := b.old.Outputs[rel]
	if known && old.SHA256 == ref.SHA256 && old.unchanged(cur) {
		if old.Stage != n.st.ID || old.Name != name {
			record(old.statRecord)
		}
		return true, ""
	}
	// A file that is not the new version is either the one an earlier
	// build published (an older version, not an edit) or an edit.
	differs := func(sha digest) (bool, string) {
		switch {
		case !known:
			return false, notOurs
		case old.SHA256 == sha:
			return false, "outdated"
		}
		return false, "modified outside kiln"
	}
	if known && !old.SHA256.IsZero() && old.unchanged(cur) {
		return differs(old.SHA256)
	}
	if cur.Size != ref.Size && !known {
		return false, notOurs
	}
	if cur.Size != ref.Size && old.SHA256.IsZero() {
		return false, "modified outside kiln"
	}
	b.hashed.Add(1)
	sha, size, err := hashFile(abs)
	if err != nil {
		return false, "unreadable (" + err.Error() + ")"
	}
	if sha != ref.SHA256 || size != ref.Size {
		return differs(sha)
	}
	record(trustAt(cur, sha, now))
	return true, ""
}

// ctxReader stops a copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// writeOutput copies blob ref to rel in the output folder atomically,
// hashing as it copies: a blob that does not match its hash is removed
// from the cache and nothing is written (errCorrupt).
func (b *builder) writeOutput(ctx context.Context, n *node, rel, name string, ref blobRef) error {
	dst, err := safepath.JoinNoLinks(b.o.OutDir, rel, "publish "+rel)
	if err != nil {
		return fmt.Errorf("publish output %s: %w", name, err)
	}
	if err := b.markWrite(); err != nil {
		return err
	}
	if err := mkdirNoLinks(b.o.Root, filepath.Dir(dst), "publish "+rel); err != nil {
		return err
	}
	if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
		return fmt.Errorf("publish %s: %s is a folder; remove it or choose another output path", rel, dst)
	}
	src := b.cache.blobPath(ref.SHA256)
	in, err := os.Open(src)
	if err != nil {
		if isNotExist(err) {
			return &corruptError{src, "missing"}
		}
		return fmt.Errorf("publish %s: read cache: %w", rel, err)
	}
	defer in.Close()
	out, err := atomicfile.Create(dst)
	if err != nil {
		return fmt.Errorf("publish %s: %w", rel, err)
	}
	defer out.Abort()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, in})
	if err != nil {
		return fmt.Errorf("publish %s: %w", rel, err)
	}
	if size != ref.Size || sumOf(h) != ref.SHA256 {
		in.Close()
		os.Remove(src)
		return &corruptError{src, "content does not match its hash"}
	}
	now := time.Now()
	if err := b.journalOutput(rel, ref.SHA256); err != nil {
		return fmt.Errorf("publish %s: %w", rel, err)
	}
	// The build flushes the file system once at the end (see finish).
	if err := out.CommitNoSync(); err != nil {
		return fmt.Errorf("publish %s: %w", rel, err)
	}
	if _, cur, err := statFile(dst, false); err == nil {
		b.mu.Lock()
		b.outputs[rel] = outputRecord{Stage: n.st.ID, Name: name, statRecord: trustAt(cur, ref.SHA256, now)}
		b.mu.Unlock()
	}
	return nil
}

// published is one output and the path it is published at.
type published struct{ name, rel string }

// publishedPaths lists where n's outputs are published: the names Publish
// lists (whether or not outs has them, so a missing one is noticed), then,
// with PublishDir, every other output in outs under that folder.
func publishedPaths(st *Stage, outs outputSet) []published {
	names := publishNames(st)
	list := make([]published, 0, len(names))
	for _, name := range names {
		list = append(list, published{name, cleanRel(st.Publish[name])})
	}
	if st.PublishDir == "" {
		return list
	}
	for _, o := range outs {
		if _, ok := st.Publish[o.Name]; !ok {
			list = append(list, published{o.Name, path.Join(st.PublishDir, o.Name)})
		}
	}
	return list
}
