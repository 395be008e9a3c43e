package imageops

import "fmt"

// Edge says what a neighbourhood operation sees beyond an image border.
type Edge uint8

const (
	// Clamp repeats the border pixel: the right choice for a single image.
	Clamp Edge = iota
	// Wrap reads the opposite border: the image is one period of an
	// endless tiling, so results tile too.
	Wrap
)

// String returns "clamp" or "wrap".
func (e Edge) String() string {
	if e == Wrap {
		return "wrap"
	}
	return "clamp"
}

// Edges gives the edge mode per axis.
type Edges struct {
	X, Y Edge
}

// ParseTile maps a manifest `tile:` value to edge modes: "xy" wraps both
// axes, "x" only the horizontal one (side-scroller strips), "y" only the
// vertical one ("yx" is read as "xy"); "" and "none" wrap neither.
func ParseTile(s string) (Edges, error) {
	switch s {
	case "", "none":
		return Edges{}, nil
	case "xy", "yx":
		return Edges{X: Wrap, Y: Wrap}, nil
	case "x":
		return Edges{X: Wrap}, nil
	case "y":
		return Edges{Y: Wrap}, nil
	}
	return Edges{}, fmt.Errorf("tile %q: want xy, x, y or none", s)
}

// index maps a possibly out-of-range coordinate i on an axis of length n to
// the pixel the edge mode reads.
func (e Edge) index(i, n int) int {
	if i >= 0 && i < n {
		return i
	}
	if e == Wrap {
		i %= n
		if i < 0 {
			i += n
		}
		return i
	}
	if i < 0 {
		return 0
	}
	return n - 1
}

// table returns t with t[j] = index(j-lo) for j in [0, n+lo+hi), so a sweep
// over [-lo, n+hi) needs no per-sample edge logic.
func (e Edge) table(n, lo, hi int) []int {
	t := make([]int, n+lo+hi)
	for j := range t {
		t[j] = e.index(j-lo, n)
	}
	return t
}
