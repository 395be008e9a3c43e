// Package spelling measures how far apart two names are, for the "did you
// mean ...?" hints kiln gives on unknown fields, ids, formats and stages.
package spelling

// Distance is the optimal string alignment distance between a and b over
// runes: insertions, deletions, substitutions and swaps of neighbours each
// cost 1, so "pormpt" is one edit from "prompt". Strings longer than 64
// runes are never typos of a name; they are 0 apart when equal and very far
// otherwise, which keeps the work bounded on hostile input.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// Suggest returns the candidate closest to name when it is close enough to
// be a typo of it (at most a third of its length in edits, and at least
// one), or "" when none is.
func Suggest(name string, candidates []string) string {
	best, bestD := "", max(1, len([]rune(name))/3)+1
	for _, c := range candidates {
		if d := Distance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}
