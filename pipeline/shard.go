package pipeline

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Shard is one of Count parts of a build's diffusion work, for spreading
// a build over machines (kiln build --shard I/N): Index is 1-based.
//
// The diffusion (Accelerator) stages are split into groups that must run
// together, a stage with every Accelerator stage it reads from (an
// img2img source, a sprite sheet's reference frame, a concept variation
// and its hires pass), and the groups are dealt out to the shards by
// estimated cost, largest first, each to the shard with the least cost
// so far. The cost of a stage is pixels × steps × images, read from its
// Params ("width", "height", "steps", "images"; a missing value counts
// as 1). Equal stages give equal shards on every machine: the split
// depends on nothing but the stages. A shard builds its groups and
// whatever they depend on; the other stages are left to other shards
// and to the build that assembles the result from the remote cache.
type Shard struct {
	Index, Count int
}

// maxShards bounds Count: more machines than this is a typo.
const maxShards = 10000

// ParseShard reads "I/N", as given to kiln build --shard.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, ierr := strconv.Atoi(is)
	n, nerr := strconv.Atoi(ns)
	if !ok || ierr != nil || nerr != nil {
		return Shard{}, fmt.Errorf("shard %q: write I/N, e.g. 2/4 for the second of four shards", s)
	}
	sh := Shard{Index: i, Count: n}
	return sh, sh.check()
}

// check validates a shard.
func (s Shard) check() error {
	switch {
	case s.Count < 1 || s.Count > maxShards:
		return fmt.Errorf("shard %s: the number of shards must be between 1 and %d", s, maxShards)
	case s.Index < 1 || s.Index > s.Count:
		return fmt.Errorf("shard %s: the shard number must be between 1 and %d (shards are numbered from 1)", s, s.Count)
	}
	return nil
}

// String formats the shard as "I/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// ShardReport is what a sharded build took of the work.
type ShardReport struct {
	// Index and Count are the shard (Index from 1).
	Index int `json:"index"`
	Count int `json:"count"`
	// Stages counts this shard's diffusion stages, of TotalStages in
	// the selection.
	Stages      int `json:"stages"`
	TotalStages int `json:"total_stages"`
	// Cost is the estimated cost of those stages (pixels × steps ×
	// images), of TotalCost; Costs is every shard's, so a CI log shows
	// the balance.
	Cost      int64   `json:"cost"`
	TotalCost int64   `json:"total_cost"`
	Costs     []int64 `json:"costs"`
}

// shardGroup is diffusion stages that run on one shard.
type shardGroup struct {
	stages []int
	cost   int64
	first  string // the smallest stage ID, to order equal costs
}

// shardGroups splits the selected Accelerator stages into groups and
// deals them to count shards; it returns each group's shard (0-based).
func (d *DAG) shardGroups(mask []bool, count int) ([]shardGroup, []int, []int64) {
	parent := map[int]int{}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	var accel []int
	for i, s := range d.stages {
		if mask[i] && s.Resource == Accelerator {
			accel = append(accel, i)
			parent[i] = i
		}
	}
	// Join each diffusion stage to the nearest diffusion stages it reads
	// from, through any CPU stages in between.
	for _, i := range accel {
		seen := map[int]bool{}
		stack := slices.Clone(d.deps[i])
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[j] {
				continue
			}
			seen[j] = true
			if _, ok := parent[j]; ok {
				parent[find(i)] = find(j)
				continue
			}
			stack = append(stack, d.deps[j]...)
		}
	}
	byRoot := map[int]*shardGroup{}
	var groups []*shardGroup
	for _, i := range accel {
		r := find(i)
		g := byRoot[r]
		if g == nil {
			g = &shardGroup{first: d.stages[i].ID}
			byRoot[r] = g
			groups = append(groups, g)
		}
		g.stages = append(g.stages, i)
		g.cost += stageCost(d.stages[i])
		g.first = min(g.first, d.stages[i].ID)
	}
	slices.SortFunc(groups, func(a, b *shardGroup) int {
		if c := cmp.Compare(b.cost, a.cost); c != 0 {
			return c
		}
		return strings.Compare(a.first, b.first)
	})
	loads := make([]int64, count)
	assigned := make([]int, len(groups))
	out := make([]shardGroup, len(groups))
	for gi, g := range groups {
		least := 0
		for k := range loads {
			if loads[k] < loads[least] {
				least = k
			}
		}
		loads[least] += g.cost
		assigned[gi] = least
		out[gi] = *g
	}
	return out, assigned, loads
}

// shardMask narrows mask to shard sh's diffusion stages and everything
// they depend on.
func (d *DAG) shardMask(mask []bool, sh Shard) []bool {
	groups, assigned, _ := d.shardGroups(mask, sh.Count)
	out := make([]bool, len(mask))
	var stack []int
	for gi, g := range groups {
		if assigned[gi] == sh.Index-1 {
			stack = append(stack, g.stages...)
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if out[i] {
			continue
		}
		out[i] = true
		stack = append(stack, d.deps[i]...)
	}
	return out
}

// shardReport describes shard o.Shard of the stages the build selected
// before sharding (o.Only), for the report.
func (d *DAG) shardReport(o Options) *ShardReport {
	mask, err := d.Select(o.Only)
	if err != nil {
		return nil
	}
	groups, assigned, loads := d.shardGroups(mask, o.Shard.Count)
	rep := &ShardReport{Index: o.Shard.Index, Count: o.Shard.Count, Costs: loads, Cost: loads[o.Shard.Index-1]}
	for gi, g := range groups {
		rep.TotalStages += len(g.stages)
		rep.TotalCost += g.cost
		if assigned[gi] == o.Shard.Index-1 {
			rep.Stages += len(g.stages)
		}
	}
	return rep
}

// stageCost estimates what running a diffusion stage costs: pixels ×
// steps × images, from its Params (each missing factor is 1).
func stageCost(s *Stage) int64 {
	raw, err := canonicalJSON(s.Params)
	if err != nil {
		return 1
	}
	var p struct {
		Width, Height, Steps, Images float64
	}
	if json.Unmarshal(raw, &p) != nil {
		return 1
	}
	cost := 1.0
	for _, f := range []float64{p.Width, p.Height, p.Steps, p.Images} {
		if f >= 1 {
			cost *= math.Floor(f)
		}
	}
	// Capped so that the sum over any number of stages fits an int64.
	return int64(min(cost, maxStageCost))
}

// maxStageCost caps one stage's estimate (16384² pixels × 1000 steps ×
// 1000 images is below it).
const maxStageCost = 1 << 48
