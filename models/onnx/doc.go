// Package onnx reads, writes, edits and builds ONNX models.
//
// It decodes the ONNX protobuf messages (ModelProto, GraphProto, NodeProto,
// TensorProto, ValueInfoProto, AttributeProto, TypeProto, OperatorSetIdProto
// and StringStringEntryProto) into plain Go structs with its own wire-format
// reader and writer, built on google.golang.org/protobuf/encoding/protowire.
//
// Loading and saving must never lose anything, because kiln rewrites graphs
// exported by other tools (the tileable generator makes every spatial Conv
// wrap around). So every message keeps the fields this package does not
// model as raw bytes (Unknown), and remembers the order in which its fields
// appeared. Encoding an unmodified model reproduces its input byte for byte;
// encoding an edited model writes the edits where the original had the
// field, and new elements after the last existing element of their field.
// Tensors whose bytes live in a separate file (data_location EXTERNAL, as
// large exports store their weights in weights.pb or model.onnx_data) keep
// their external_data entries untouched.
//
// The package also has a Builder for constructing small graphs (kiln's test
// models and graph rewrites), helpers that graph rewrites need (finding
// nodes, inserting them, renaming values, generating unique names,
// topological sorting), and IEEE 754 half-precision conversions used by the
// runtime for float16 models.
package onnx
