// Package exporters expands a project's atlases and materials into
// pipeline stages that write engine-ready files: texture atlases (see the
// atlas subpackage) and glTF 2.0 materials (see the gltf subpackage). The
// stages read the images the generators' stages made, through the output
// references the generators package publishes, so hand-made and generated
// art mix freely.
package exporters
