// Package gltf exports kiln materials as glTF 2.0 files that engines and
// viewers load without edits: a .gltf with external PNGs (what Godot and
// Unity import best) and a self-contained .glb.
//
// A Material mirrors a manifest's material entry: the metallic-roughness
// maps kiln derives from an albedo (base colour, ORM or metallic-roughness,
// normal, occlusion, emissive), their factors, the alpha mode, and how the
// textures wrap and repeat. Each file carries a preview mesh (a plane, cube or
// UV sphere with normals, UVs when the material has textures, and tangents
// when it has a normal map) so it shows something in any viewer. Output is
// deterministic: the same Material gives the same bytes.
//
// EncodeGLTF and EncodeGLB return bytes, so a pipeline stage can put them
// wherever its outputs go; WriteGLTF and WriteGLB write them to disk
// atomically.
//
// Files are built with github.com/qmuntal/gltf and checked in the tests by the
// Khronos glTF-Validator, which must report no errors, warnings, infos or
// hints.
package gltf
