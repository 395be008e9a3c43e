package manifests

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestExampleSchemasCurrent keeps the editor schemas committed with the
// example projects equal to what kiln init would write today, so that an
// editor opened on examples/demo completes and checks the fields kiln
// knows now. Regenerate them with kiln schema > examples/demo/.kiln/
// manifest.schema.json and kiln schema --config > .../config.schema.json.
func TestExampleSchemasCurrent(t *testing.T) {
	for path, want := range map[string][]byte{
		SchemaPath:       JSONSchema(),
		ConfigSchemaPath: ConfigSchema(),
	} {
		file := filepath.Join("..", "examples", "demo", filepath.FromSlash(path))
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			t.Errorf("%s is out of date: regenerate it with kiln schema (see this test's comment)", file)
		}
	}
}
