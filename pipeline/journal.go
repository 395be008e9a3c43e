package pipeline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// The output journal records, before an output is renamed into place,
// that kiln is about to own the file at that path. The build state is
// saved only when a build finishes, so without the journal a build killed
// after publishing would leave files that the next build could not tell
// from a user's own, and would have to refuse to replace (kiln replaces
// and deletes only files it wrote). Each line is
//
//	<sha256 hex> <quoted path relative to the output folder>
//
// appended with one write; a torn last line (a kill in the middle of the
// write) is skipped. The next build or clean adds the entries to the state
// it loaded, and the file is removed once a state that includes them is
// saved.

// journalName is the journal's name inside the cache folder.
const journalName = "outputs.journal"

// journalLine formats one entry.
func journalLine(rel string, sha digest) []byte {
	return fmt.Appendf(nil, "%s %s\n", sha, strconv.Quote(rel))
}

// parseJournal returns the entries of a journal, the last one for a path
// winning; malformed lines are skipped.
func parseJournal(data []byte) map[string]digest {
	out := map[string]digest{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		hexSHA, quoted, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var sha digest
		if err := sha.UnmarshalText([]byte(hexSHA)); err != nil {
			continue
		}
		rel, err := strconv.Unquote(quoted)
		if err != nil || safepath.Validate(rel) != nil {
			continue
		}
		out[rel] = sha
	}
	return out
}

// mergeJournal adds the outputs a killed build published to st, as
// records that must be verified by hash (their stat is unknown), and
// reports whether there were any.
func mergeJournal(cacheDir string, st *buildState) bool {
	data, err := readNoFollow(filepath.Join(cacheDir, journalName))
	if err != nil || len(data) == 0 {
		return false
	}
	entries := parseJournal(data)
	for rel, sha := range entries {
		if old, ok := st.Outputs[rel]; ok && old.SHA256 == sha {
			continue
		}
		rec := st.Outputs[rel]
		rec.statRecord = statRecord{Size: -1, SHA256: sha}
		st.Outputs[rel] = rec
	}
	return true
}

// removeJournal deletes the journal once a state that includes its
// entries is saved.
func removeJournal(cacheDir string) error {
	p := filepath.Join(cacheDir, journalName)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// journalOutput appends rel to the journal before it is published. The
// caller holds b.mu or calls it from one goroutine at a time per path;
// appends of whole lines by O_APPEND do not interleave.
func (b *builder) journalOutput(rel string, sha digest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.journal == nil {
		f, err := safepath.OpenFile(filepath.Join(b.o.CacheDir, journalName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644, "record a published output")
		if err != nil {
			return err
		}
		b.journal = f
	}
	if _, err := b.journal.Write(journalLine(rel, sha)); err != nil {
		return fmt.Errorf("record published output %s in %s: %w", rel, b.journal.Name(), err)
	}
	return nil
}
