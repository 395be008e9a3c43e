//go:build !linux

package pipeline

import "io/fs"

// statDirs stats files by path outside Linux (see dirstat_linux.go).
type statDirs struct{}

func newStatDirs() *statDirs { return &statDirs{} }

// stat is statFile without the FileInfo.
func (c *statDirs) stat(path string, follow bool) (fs.FileMode, statRecord, error) {
	fi, rec, err := statFile(path, follow)
	if err != nil {
		return 0, rec, err
	}
	return fi.Mode(), rec, nil
}

func (c *statDirs) close() {}
