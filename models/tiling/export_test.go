package tiling

import "context"

// VariantWith is Variant with the hard-link function and the size from
// which inline weights are shared as parameters, so the external tests
// can make linking fail as it does across file systems, and share the
// weights of small test graphs.
func VariantWith(ctx context.Context, src string, axes Axes, cacheDir string, link func(oldname, newname string) error, minShared int64) (*Graph, error) {
	return builder{link: link, minShared: minShared}.variant(ctx, src, axes, cacheDir)
}
