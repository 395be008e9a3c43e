// Package benchset generates the sprite-size sets the atlas packer is
// benchmarked on, from fixed seeds, so the Go benchmarks and the node script
// that runs the peer packers see exactly the same rectangles.
package benchset

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// Set is a named list of sprite sizes with the packing parameters every
// packer in the comparison uses.
type Set struct {
	// Name identifies the set in tables ("uniform", "mixed", ...).
	Name string `json:"name"`
	// About says what the set models.
	About string `json:"about"`
	// MaxSize is the page size limit in pixels.
	MaxSize int `json:"maxSize"`
	// Padding is the gap between sprites, Border the gap to the page
	// edge. free-tex-packer-core only knows "padding p" meaning 2p between
	// sprites and p at the edge, so sets keep Padding = 2 × Border.
	Padding int `json:"padding"`
	Border  int `json:"border"`
	// Sizes are [width, height] pairs.
	Sizes [][2]int `json:"sizes"`
}

// Area returns the summed sprite area.
func (s *Set) Area() int {
	a := 0
	for _, wh := range s.Sizes {
		a += wh[0] * wh[1]
	}
	return a
}

// JSON encodes the set for the node script.
func (s *Set) JSON() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode set %s: %w", s.Name, err)
	}
	return b, nil
}

// All returns the benchmark sets: uniform sizes, mixed small and large,
// long thin strips, 1,000+ small sprites and power-of-two sizes.
func All() []Set {
	return []Set{Uniform(), Mixed(), Strips(), ManySmall(), PowerOfTwo()}
}

func newSet(name, about string, seed uint64) (Set, *rand.Rand) {
	return Set{Name: name, About: about, MaxSize: 2048, Padding: 2, Border: 1},
		rand.New(rand.NewPCG(seed, 0x6b696c6e)) // "kiln"
}

// between returns a uniform integer in [lo, hi].
func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// Uniform is 300 sprites of one size, like the frames of a sprite sheet.
func Uniform() Set {
	s, _ := newSet("uniform", "300 frames of 46×62", 1)
	for range 300 {
		s.Sizes = append(s.Sizes, [2]int{46, 62})
	}
	return s
}

// Mixed is 200 sprites: mostly small icons, some medium sprites and a few
// large backgrounds.
func Mixed() Set {
	s, r := newSet("mixed", "200 sprites: 70% 8–48 px, 25% 64–160 px, 5% 192–384 px", 2)
	for range 200 {
		var lo, hi int
		switch p := r.IntN(100); {
		case p < 70:
			lo, hi = 8, 48
		case p < 95:
			lo, hi = 64, 160
		default:
			lo, hi = 192, 384
		}
		s.Sizes = append(s.Sizes, [2]int{between(r, lo, hi), between(r, lo, hi)})
	}
	return s
}

// Strips is 150 long thin sprites (bars, ropes, beams), 60% horizontal and
// 40% vertical.
func Strips() Set {
	s, r := newSet("strips", "150 strips: 128–512 × 4–24, 40% of them standing", 3)
	for range 150 {
		long, thin := between(r, 128, 512), between(r, 4, 24)
		if r.IntN(10) < 4 {
			long, thin = thin, long
		}
		s.Sizes = append(s.Sizes, [2]int{long, thin})
	}
	return s
}

// ManySmall is 1,500 small sprites (particles, glyphs, tiles).
func ManySmall() Set {
	s, r := newSet("many-small", "1,500 sprites of 8–40 px", 4)
	for range 1500 {
		s.Sizes = append(s.Sizes, [2]int{between(r, 8, 40), between(r, 8, 40)})
	}
	return s
}

// PowerOfTwo is 300 sprites whose sides are powers of two from 8 to 128,
// smaller sides more likely.
func PowerOfTwo() Set {
	s, r := newSet("pot", "300 sprites with sides 8–128, powers of two", 5)
	side := func() int {
		switch p := r.IntN(100); {
		case p < 35:
			return 8
		case p < 65:
			return 16
		case p < 85:
			return 32
		case p < 96:
			return 64
		default:
			return 128
		}
	}
	for range 300 {
		s.Sizes = append(s.Sizes, [2]int{side(), side()})
	}
	return s
}
