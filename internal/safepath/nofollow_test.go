//go:build unix

package safepath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestNoFollowHelpers(t *testing.T) {
	base := t.TempDir()
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	os.Mkdir(filepath.Join(base, "real"), 0o755)
	os.Symlink(outside, filepath.Join(base, "out"))
	os.Symlink(filepath.Join(base, "real"), filepath.Join(base, "inside"))
	os.Symlink(victim, filepath.Join(base, "real", "file"))
	os.WriteFile(filepath.Join(base, "plain"), []byte("x"), 0o644)
	syscall.Mkfifo(filepath.Join(base, "fifo"), 0o644)

	isLink := func(err error) bool {
		var le *LinkError
		return errors.As(err, &le) && errors.Is(err, ErrUnsafe)
	}
	tests := []struct {
		name string
		run  func() error
		link bool   // want a *LinkError
		want string // else a substring of the error; "" = success
	}{
		{"mkdir below a link out", func() error { return MkdirAll(base, filepath.Join(base, "out", "a", "b"), "op") }, true, ""},
		{"mkdir below a link inside", func() error { return MkdirAll(base, filepath.Join(base, "inside", "a"), "op") }, true, ""},
		{"mkdir through a file", func() error { return MkdirAll(base, filepath.Join(base, "plain", "a"), "op") }, false, "is a file where a folder should be"},
		{"mkdir fresh", func() error { return MkdirAll(base, filepath.Join(base, "new", "a", "b"), "op") }, false, ""},
		{"mkdir outside base", func() error { return MkdirAll(base, outside, "op") }, false, "is not inside"},
		{"check link", func() error { return CheckNoLinks(base, filepath.Join(base, "out"), "op") }, true, ""},
		{"check missing", func() error { return CheckNoLinks(base, filepath.Join(base, "nope", "x"), "op") }, false, ""},
		{"join last is link", func() error { _, err := JoinNoLinks(base, "real/file", "op"); return err }, true, ""},
		{"join through link", func() error { _, err := JoinNoLinks(base, "out/x", "op"); return err }, true, ""},
		{"join dotdot", func() error { _, err := JoinNoLinks(base, "../x", "op"); return err }, false, `contains ".."`},
		{"open link", func() error {
			_, err := OpenFile(filepath.Join(base, "real", "file"), os.O_RDWR|os.O_CREATE, 0o644, "op")
			return err
		}, true, ""},
		{"open fifo", func() error {
			_, err := OpenFile(filepath.Join(base, "fifo"), os.O_RDWR|os.O_CREATE, 0o644, "op")
			return err
		}, false, "not a regular file"},
		{"open plain", func() error {
			f, err := OpenFile(filepath.Join(base, "plain"), os.O_RDONLY, 0, "op")
			if err == nil {
				f.Close()
			}
			return err
		}, false, ""},
		{"remove link", func() error { return RemoveFile(filepath.Join(base, "real", "file"), "op") }, true, ""},
		{"remove folder", func() error { return RemoveFile(filepath.Join(base, "real"), "op") }, false, "is a folder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			switch {
			case tc.link:
				if !isLink(err) {
					t.Errorf("got %v, want a LinkError", err)
				} else if !strings.Contains(err.Error(), "kiln does not follow symlinks") {
					t.Errorf("message %q", err)
				}
			case tc.want == "":
				if err != nil {
					t.Errorf("got %v", err)
				}
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if data, _ := os.ReadFile(victim); string(data) != "precious" {
		t.Errorf("victim changed: %q", data)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("outside folder changed: %v", entries)
	}
}
