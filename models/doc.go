// Package models runs diffusion models on ONNX Runtime.
//
// It finds and installs the ONNX Runtime shared library (FindLibrary,
// Setup), wraps the library's process-wide environment in a Runtime with an
// execution provider and a pool of sessions, reads model folders in the
// diffusers / optimum ONNX layout (OpenFolder), and exposes such a folder to
// the sampler as a Diffuser, which implements sampler.Model.
//
// Graph inputs are never assumed: names, element types and ranks come from
// the ONNX Runtime session, so exports that differ (int64 or float
// timesteps, rank-0 scalars, fp16 weights, SDXL and LCM extras) all run
// through the same code.
package models
