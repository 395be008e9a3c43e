package tiling

// VariantWithLink exposes variant to the external tests, which make
// linking fail as it does across file systems.
var VariantWithLink = variant
