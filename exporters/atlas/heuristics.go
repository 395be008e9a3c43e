package atlas

// Heuristics returns every name Settings.Heuristic accepts: HeuristicBest,
// HeuristicGlobal, and each MaxRects rule (bssf, blsf, baf, bl, cp) alone
// and with the "-global" suffix. It is the one list of heuristic names:
// the manifest schema, kiln validate and the README take it from here, so
// a name that validates is a name the packer knows.
func Heuristics() []string {
	names := []string{HeuristicBest, HeuristicGlobal}
	for h := heuristic(0); h < numHeuristics; h++ {
		names = append(names, h.String(), h.String()+"-global")
	}
	return names
}
