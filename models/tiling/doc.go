// Package tiling makes diffusion models paint seamless (tileable) images by
// rewriting their ONNX graphs so every spatial convolution pads
// circularly: the pixels that enter a convolution from beyond the left
// edge are those of the right edge, and so on, as if the image were
// drawn on a torus. A UNet and a VAE decoder rewritten this way produce
// images whose opposite edges continue each other, which is what
// AUTOMATIC1111's "Tiling" option and stable-diffusion.cpp's --circular
// do to PyTorch and ggml models.
//
// Rewrite edits a model in memory. Each padded Conv (and ConvInteger,
// QLinearConv and ONNX Runtime's FusedConv, which share its attributes) gets its padding on the
// wrapping axes replaced by Slice and Concat nodes that prepend the far
// border of its input and append the near one; its own pads on those axes
// become zero, while axes that do not wrap keep their zero padding in the
// Conv. Slice and Concat exist at every opset and on every execution
// provider, and Slice with negative starts needs no knowledge of the
// image size, so the rewritten graph keeps its dynamic shapes. (Pad with
// mode "wrap" is avoided: it needs opset 19 and is missing from several
// providers.) A ConvTranspose is made circular too: it computes its full
// output, the overhang past one period is folded back onto the start, and
// the result is rotated by its begin padding.
//
// Variant applies Rewrite to a model file and keeps the result in kiln's
// cache folder, never touching the user's model folder. Weights are shared
// with the original through hard links, whether they are in external
// files or inline in the graph (see Variant for why not symlinks). Load
// the variant through models.DiffuserOptions.Graphs (with Axes.Label as
// the Variant), or models.SessionSpec; a variant whose ExternalDataDir is
// set needs SessionSpec.ExternalDataDir.
//
// The cost at inference is two copies of each padded convolution's input
// (one Concat per axis). On the generated test VAE decoder, whose
// convolutions have 3 to 16 channels, that makes decoding about 1.7 times
// slower; real decoders have 128 to 512 channels, so the convolutions
// dominate (see BenchmarkInference).
package tiling
