package tiling

import (
	"fmt"
	"strings"
)

// Axes says along which image axes a rewritten graph wraps around: X is
// the width (the last tensor axis), Y the height (the one before). An
// axis that does not wrap keeps the model's zero padding, so a texture
// can tile horizontally only, as a frieze or a scrolling background does.
type Axes struct {
	X, Y bool
}

// Both, X-only and Y-only axes, as manifests spell them (tile: xy | x | y).
var (
	XY = Axes{X: true, Y: true}
	X  = Axes{X: true}
	Y  = Axes{Y: true}
)

// ParseAxes reads "xy" (or "yx"), "x", "y" or "none"/"" (case-insensitive),
// as the manifest's tile field writes them.
func ParseAxes(s string) (Axes, error) {
	var a Axes
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" || t == "none" {
		return a, nil
	}
	for _, r := range t {
		switch {
		case r == 'x' && !a.X:
			a.X = true
		case r == 'y' && !a.Y:
			a.Y = true
		default:
			return Axes{}, fmt.Errorf("tile axes %q: want xy, x, y or none", s)
		}
	}
	return a, nil
}

// String returns "xy", "x", "y" or "none".
func (a Axes) String() string {
	switch {
	case a.X && a.Y:
		return "xy"
	case a.X:
		return "x"
	case a.Y:
		return "y"
	}
	return "none"
}

// None reports whether no axis wraps.
func (a Axes) None() bool { return !a.X && !a.Y }

// Label names the graph variant for a session pool (for example
// models.DiffuserOptions.Variant or models.SessionSpec.Variant):
// "circular-xy", "circular-x" or "circular-y".
func (a Axes) Label() string { return "circular-" + a.String() }

// contains reports whether every axis of b is in a.
func (a Axes) contains(b Axes) bool { return (a.X || !b.X) && (a.Y || !b.Y) }

func (a Axes) union(b Axes) Axes { return Axes{X: a.X || b.X, Y: a.Y || b.Y} }
