package pipeline

import (
	"fmt"
	"github.com/kiln-dev/kiln/internal/spelling"
	"path"
	"sort"
	"strings"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// String names the resource as in reports and graphs: "cpu" or
// "accelerator".
// String returns "cpu" or "accelerator".
func (r Resource) String() string {
	switch r {
	case CPU:
		return "cpu"
	case Accelerator:
		return "accelerator"
	}
	return fmt.Sprintf("resource(%d)", int(r))
}

// Problem is one thing wrong with a stage graph.
type Problem struct {
	// Where is the manifest position ("file:line:col") it concerns, if
	// known.
	Where string
	// Message says what is wrong and what to do.
	Message string
}

// String formats the problem as "where: message".
func (p Problem) String() string {
	if p.Where == "" {
		return p.Message
	}
	return p.Where + ": " + p.Message
}

// GraphError lists every problem found in a stage graph (unknown or
// duplicate stages, cycles, bad output paths), so users can fix them all
// at once. It is a manifest error, not a build failure.
type GraphError struct {
	// Problems are in the order found: per stage, then cycles.
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *GraphError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// DAG is a validated stage graph. Its stages are in dependency order:
// every stage comes after all of its dependencies, and otherwise in the
// order they were given.
type DAG struct {
	stages     []*Stage
	index      map[string]int
	deps       [][]int // per stage, indexes of its (unique) dependencies
	dependents [][]int
	published  map[string]*Stage // cleaned output path -> stage publishing it
	files      map[string]bool   // source files of all stages, as written
}

// Graph validates stages and orders them. It reports, all at once: stages
// with an empty or duplicate ID, dependencies on unknown stages (at the
// DepWhere position of the reference, else the stage's Where), output or
// source paths that could leave their folder, two stages publishing the
// same path (or one inside the other), and a dependency cycle, printed as
// "a → b → c → a" where each arrow reads "needs", with the position of
// each reference.
func Graph(stages []Stage) (*DAG, error) {
	d := &DAG{
		stages: make([]*Stage, len(stages)),
		index:  make(map[string]int, len(stages)),
		files:  make(map[string]bool, len(stages)),
	}
	var problems []Problem
	add := func(where, format string, args ...any) {
		problems = append(problems, Problem{Where: where, Message: fmt.Sprintf(format, args...)})
	}
	for i := range stages {
		s := &stages[i]
		d.stages[i] = s
		if s.ID == "" {
			add(s.Where, "a stage of kind %q has an empty id; every stage needs a unique id", s.Kind)
			continue
		}
		if j, dup := d.index[s.ID]; dup {
			first := stages[j].Where
			if first == "" {
				first = "an earlier entry"
			}
			add(s.Where, "duplicate stage id %q (first defined at %s); give each asset a unique id", s.ID, first)
			continue
		}
		d.index[s.ID] = i
	}

	d.deps = make([][]int, len(stages))
	d.dependents = make([][]int, len(stages))
	for i, s := range d.stages {
		if j, ok := d.index[s.ID]; !ok || j != i {
			continue // empty or duplicate: reported above
		}
		seen := make(map[int]bool, len(s.Deps))
		for _, dep := range s.Deps {
			j, ok := d.index[dep]
			if !ok {
				add(depWhere(s, dep), "stage %q needs %q, which is not defined; check the reference or define that asset", s.ID, dep)
				continue
			}
			if seen[j] {
				continue
			}
			seen[j] = true
			d.deps[i] = append(d.deps[i], j)
			d.dependents[j] = append(d.dependents[j], i)
		}
		for _, f := range s.Files {
			if err := safepath.Validate(f); err != nil {
				add(s.Where, "stage %q source file: %v", s.ID, err)
			}
			d.files[f] = true
		}
	}
	var pubProblems []Problem
	d.published, pubProblems = checkPublish(d.stages)
	problems = append(problems, pubProblems...)

	order, cycle := d.topo()
	if cycle != nil {
		problems = append(problems, d.cycleProblem(cycle))
	}
	if len(problems) > 0 {
		return nil, &GraphError{Problems: problems}
	}
	d.reorder(order)
	return d, nil
}

// depWhere is the best position for the reference from s to dep.
func depWhere(s *Stage, dep string) string {
	if w := s.DepWhere[dep]; w != "" {
		return w
	}
	return s.Where
}

// checkPublish validates output paths and finds collisions. It returns
// the stage publishing each (cleaned) path.
func checkPublish(stages []*Stage) (map[string]*Stage, []Problem) {
	var problems []Problem
	owner := make(map[string]*Stage, len(stages))
	for _, s := range stages {
		names := publishNames(s)
		for _, name := range names {
			p := s.Publish[name]
			if err := safepath.Validate(p); err != nil {
				problems = append(problems, Problem{Where: s.Where,
					Message: fmt.Sprintf("stage %q output %q: %v", s.ID, name, err)})
				continue
			}
			clean := path.Clean(p)
			if o, dup := owner[clean]; dup {
				msg := fmt.Sprintf("stages %q and %q both publish %q; give them different output paths", o.ID, s.ID, clean)
				if o == s {
					msg = fmt.Sprintf("stage %q publishes two outputs to %q; give them different output paths", s.ID, clean)
				}
				problems = append(problems, Problem{Where: s.Where, Message: msg})
				continue
			}
			owner[clean] = s
		}
	}
	// Folders owned by a PublishDir stage: nothing else may publish inside.
	dirs := map[string]*Stage{}
	for _, s := range stages {
		if s.PublishDir == "" {
			continue
		}
		if err := safepath.Validate(s.PublishDir); err != nil {
			problems = append(problems, Problem{Where: s.Where,
				Message: fmt.Sprintf("stage %q output folder: %v", s.ID, err)})
			continue
		}
		d := path.Clean(s.PublishDir)
		if o, dup := dirs[d]; dup {
			problems = append(problems, Problem{Where: s.Where,
				Message: fmt.Sprintf("stages %q and %q both publish into folder %q; give them different output paths", o.ID, s.ID, d)})
			continue
		}
		dirs[d] = s
	}
	for _, d := range sortedKeys(dirs) {
		for p := d; p != "."; p = path.Dir(p) {
			if o, ok := owner[p]; ok {
				problems = append(problems, Problem{Where: o.Where,
					Message: fmt.Sprintf("stage %q publishes %q where stage %q publishes its folder %q; give them different output paths", o.ID, p, dirs[d].ID, d)})
			}
			if o, ok := dirs[p]; ok && p != d {
				problems = append(problems, Problem{Where: dirs[d].Where,
					Message: fmt.Sprintf("stage %q publishes into folder %q inside folder %q of stage %q; give them different output paths", dirs[d].ID, d, p, o.ID)})
			}
		}
	}
	for _, p := range sortedKeys(owner) {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if o, ok := dirs[dir]; ok && o != owner[p] {
				problems = append(problems, Problem{Where: owner[p].Where,
					Message: fmt.Sprintf("stage %q publishes %q inside folder %q, which stage %q publishes into; give them different output paths", owner[p].ID, p, dir, o.ID)})
			}
		}
	}
	var nested []string
	for p := range owner {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, ok := owner[dir]; ok {
				nested = append(nested, p)
				break
			}
		}
	}
	sort.Strings(nested)
	for _, p := range nested {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if o, ok := owner[dir]; ok {
				problems = append(problems, Problem{Where: owner[p].Where,
					Message: fmt.Sprintf("stage %q publishes %q inside %q, which stage %q publishes as a file; give them different output paths", owner[p].ID, p, dir, o.ID)})
				break
			}
		}
	}
	return owner, problems
}

// publishNames returns the names s publishes, sorted.
func publishNames(s *Stage) []string {
	if len(s.Publish) == 1 {
		for name := range s.Publish {
			return []string{name}
		}
	}
	return sortedKeys(s.Publish)
}

// topo orders stages (Kahn's algorithm, always taking the earliest given
// stage among those whose dependencies are placed). When some
// stages cannot be ordered it returns one cycle among them instead.
func (d *DAG) topo() (order []int, cycle []int) {
	n := len(d.stages)
	pending := make([]int, n)
	for i := range n {
		pending[i] = len(d.deps[i])
	}
	order = make([]int, 0, n)
	ready := &intHeap{}
	for i := range n {
		if pending[i] == 0 {
			ready.push(i)
		}
	}
	for ready.len() > 0 {
		i := ready.pop()
		order = append(order, i)
		for _, j := range d.dependents[i] {
			pending[j]--
			if pending[j] == 0 {
				ready.push(j)
			}
		}
	}
	if len(order) == n {
		return order, nil
	}
	// Every stage left has a dependency that is left too; walk them from
	// the first one until a stage repeats.
	start := -1
	for i := range n {
		if pending[i] > 0 {
			start = i
			break
		}
	}
	pos := map[int]int{}
	var walk []int
	for cur := start; ; {
		if p, seen := pos[cur]; seen {
			cycle = walk[p:]
			break
		}
		pos[cur] = len(walk)
		walk = append(walk, cur)
		for _, dep := range d.deps[cur] {
			if pending[dep] > 0 {
				cur = dep
				break
			}
		}
	}
	// Start the cycle at its first stage in input order, for stable text.
	low := 0
	for k, i := range cycle {
		if i < cycle[low] {
			low = k
		}
	}
	return nil, append(cycle[low:], cycle[:low]...)
}

// cycleProblem formats a cycle with the position of each edge.
func (d *DAG) cycleProblem(cycle []int) Problem {
	var b strings.Builder
	ids := make([]string, 0, len(cycle)+1)
	for _, i := range cycle {
		ids = append(ids, d.stages[i].ID)
	}
	ids = append(ids, ids[0])
	fmt.Fprintf(&b, "dependency cycle: %s", strings.Join(ids, " → "))
	for k, i := range cycle {
		s := d.stages[i]
		next := d.stages[cycle[(k+1)%len(cycle)]].ID
		fmt.Fprintf(&b, "\n  %s needs %s", s.ID, next)
		if w := depWhere(s, next); w != "" {
			fmt.Fprintf(&b, " (%s)", w)
		}
	}
	b.WriteString("\nremove one of these references to break the cycle")
	return Problem{Message: b.String()}
}

// reorder puts the stages in the given order.
func (d *DAG) reorder(order []int) {
	newPos := make([]int, len(order))
	for k, i := range order {
		newPos[i] = k
	}
	stages := make([]*Stage, len(order))
	deps := make([][]int, len(order))
	dependents := make([][]int, len(order))
	for k, i := range order {
		stages[k] = d.stages[i]
		d.index[d.stages[i].ID] = k
		for _, j := range d.deps[i] {
			deps[k] = append(deps[k], newPos[j])
		}
		for _, j := range d.dependents[i] {
			dependents[k] = append(dependents[k], newPos[j])
		}
		sort.Ints(dependents[k])
	}
	d.stages, d.deps, d.dependents = stages, deps, dependents
}

// Len returns the number of stages.
func (d *DAG) Len() int { return len(d.stages) }

// Stages returns the stages in dependency order. The stages are the
// caller's (Graph does not copy them); do not modify them during a build.
func (d *DAG) Stages() []*Stage { return d.stages }

// Stage returns the stage with the given id.
func (d *DAG) Stage(id string) (*Stage, bool) {
	i, ok := d.index[id]
	if !ok {
		return nil, false
	}
	return d.stages[i], true
}

// Deps returns the IDs of the stages id needs, without duplicates.
func (d *DAG) Deps(id string) []string {
	i, ok := d.index[id]
	if !ok {
		return nil
	}
	out := make([]string, len(d.deps[i]))
	for k, j := range d.deps[i] {
		out[k] = d.stages[j].ID
	}
	return out
}

// Dependents returns the IDs of the stages that need id.
func (d *DAG) Dependents(id string) []string {
	i, ok := d.index[id]
	if !ok {
		return nil
	}
	out := make([]string, len(d.dependents[i]))
	for k, j := range d.dependents[i] {
		out[k] = d.stages[j].ID
	}
	return out
}

// Select returns which stages a build limited to names must run: the
// stages of each named asset (or each named stage ID, or of each asset
// a glob such as "ui/*" matches, see onlyMatch) and everything they
// depend on, as a mask indexed like Stages. No names selects everything.
// An unknown name, or a pattern that matches nothing, is an error that
// names the closest known assets.
func (d *DAG) Select(names []string) ([]bool, error) {
	mask := make([]bool, len(d.stages))
	if len(names) == 0 {
		for i := range mask {
			mask[i] = true
		}
		return mask, nil
	}
	byAsset := map[string][]int{}
	for i, s := range d.stages {
		byAsset[s.Asset] = append(byAsset[s.Asset], i)
	}
	var stack []int
	var problems []Problem
	assets := sortedKeys(byAsset)
	for _, name := range names {
		is, pr := d.onlyMatch(name, byAsset, assets)
		if pr != nil {
			problems = append(problems, *pr)
			continue
		}
		stack = append(stack, is...)
	}
	if len(problems) > 0 {
		return nil, &GraphError{Problems: problems}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if mask[i] {
			continue
		}
		mask[i] = true
		stack = append(stack, d.deps[i]...)
	}
	return mask, nil
}

// closest returns the candidate nearest to name by edit distance, if it is
// near enough to be a plausible typo.
func closest(name string, candidates []string) string {
	best, bestD := "", len(name)/2+2
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if dist := spelling.Distance(name, c); dist < bestD {
			best, bestD = c, dist
		}
	}
	return best
}

// intHeap is a min-heap of ints.
type intHeap struct{ a []int }

func (h *intHeap) len() int { return len(h.a) }

func (h *intHeap) push(x int) {
	h.a = append(h.a, x)
	for i := len(h.a) - 1; i > 0; {
		p := (i - 1) / 2
		if h.a[p] <= h.a[i] {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}

func (h *intHeap) pop() int {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.a[l] < h.a[m] {
			m = l
		}
		if r < last && h.a[r] < h.a[m] {
			m = r
		}
		if m == i {
			break
		}
		h.a[i], h.a[m] = h.a[m], h.a[i]
		i = m
	}
	return top
}
