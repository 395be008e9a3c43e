package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestExchange(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.MkdirAll(filepath.Join(a, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a, "sub", "x"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("B"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Exchange(a, b)
	if errors.Is(err, ErrExchangeUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(a); err != nil || string(data) != "B" {
		t.Errorf("a after the exchange: %q, %v", data, err)
	}
	if data, err := os.ReadFile(filepath.Join(b, "sub", "x")); err != nil || string(data) != "A" {
		t.Errorf("b/sub/x after the exchange: %q, %v", data, err)
	}
	if err := Exchange(a, filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrExchangeUnsupported) {
		t.Errorf("exchange with a missing path: %v, want an error", err)
	}
}
