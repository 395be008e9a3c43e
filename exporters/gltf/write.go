package gltf

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-dev/kiln/internal/atomicfile"
)

// filePerm is the permission of every file written.
const filePerm = 0o644

// WriteGLTF writes name.gltf, name.bin and the material's PNGs into dir,
// each atomically (see internal/atomicfile), creating dir if needed. Texture
// Files are read relative to dir. The .gltf is written last, so a reader
// never sees it before the files it references. It returns the paths
// written, the .gltf first.
func WriteGLTF(dir, name string, m Material) ([]string, error) {
	files, err := EncodeGLTF(name, m, os.DirFS(dir))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export glTF %q: create folder: %w", name, err)
	}
	paths := make([]string, len(files))
	for i := range files {
		// files[0] is the .gltf: write it after the others.
		f := files[(i+1)%len(files)]
		p := filepath.Join(dir, f.Name) // names are plain file names
		if err := atomicfile.WriteFile(p, f.Data, filePerm); err != nil {
			return nil, fmt.Errorf("export glTF %q: %w", name, err)
		}
		paths[(i+1)%len(files)] = p
	}
	return paths, nil
}

// WriteGLB writes a self-contained .glb to path atomically, creating its
// folder if needed. Texture Files are read relative to that folder.
func WriteGLB(path string, m Material) error {
	dir := filepath.Dir(path)
	data, err := EncodeGLB(m, os.DirFS(dir))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export GLB %s: create folder: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, data, filePerm); err != nil {
		return fmt.Errorf("export GLB %s: %w", path, err)
	}
	return nil
}
