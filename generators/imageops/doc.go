// Package imageops holds the pure-Go image operations kiln's generators
// need after diffusion: PBR map derivation from an albedo, a seam metric for
// tileable textures, wrap-aware resampling, chroma keying with colour
// decontamination, palette quantisation, PNG files that carry their recipe,
// and contact and sprite sheets.
//
// Every operation works on [Float], a float32 image with 1 to 4 interleaved
// channels (gray, gray+alpha, RGB, RGBA) holding values in [0,1]. Values are
// the encoded (sRGB) values of the file, not linear light: the derivations
// here are heuristics an artist tunes by eye, and resampling in the encoded
// space is what image editors do by default. Conversions to and from
// image.Image sit at the edges ([FromImage], [Float.NRGBA], [Float.Gray16]).
//
// Every neighbourhood operation takes an [Edges] value that says, per axis,
// whether samples beyond the border repeat the border pixel ([Clamp]) or come
// from the opposite side ([Wrap]). Wrap is what a tileable texture (manifest
// `tile: xy | x | y`) needs, so that maps derived from it tile too.
//
// All operations are O(pixels): blurs are repeated box filters computed with
// running sums, independent of the radius. Work is split across
// GOMAXPROCS goroutines by rows or columns; results never depend on that
// split (reductions are summed per row, then in row order), so the same
// input gives the same bytes on any machine.
package imageops
