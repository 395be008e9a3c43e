package imageops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadPaletteLimits checks that oversized palette files are refused
// before they are read and that palettes with too many colours are refused
// at the line that goes over, in both formats.
func TestLoadPaletteLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.hex")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: 64 GiB claimed, nothing allocated, nothing read.
	if err := f.Truncate(64 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var hex, gpl strings.Builder
	gpl.WriteString("GIMP Palette\n")
	for i := 0; i <= MaxPaletteColors; i++ {
		hex.WriteString("#102030\n")
		gpl.WriteString("16 32 48\n")
	}
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		path, want string
	}{
		{big, big + " is 68719476736 bytes, more than 1048576; a palette file lists at most 4096 colours"},
		{write("many.hex", hex.String()), "many.hex:4097: palette has more than 4096 colours, the most kiln accepts; reduce it"},
		{write("many.gpl", gpl.String()), "many.gpl:4098: palette has more than 4096 colours, the most kiln accepts; reduce it"},
	}
	for _, tt := range tests {
		_, err := LoadPalette(tt.path)
		if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
			t.Errorf("LoadPalette(%s) = %v, want it to end with %q", filepath.Base(tt.path), err, tt.want)
		}
	}
}
