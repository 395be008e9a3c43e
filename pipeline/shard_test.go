package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"1/1", "1/1"},
		{"2/4", "2/4"},
		{"4/4", "4/4"},
		{"0/4", "shards are numbered from 1"},
		{"5/4", "between 1 and 4"},
		{"1/0", "number of shards"},
		{"-1/2", "between 1 and 2"},
		{"a/b", "write I/N"},
		{"2", "write I/N"},
		{"1/2/3", "write I/N"},
		{"1/100000", "number of shards"},
	}
	for _, tc := range cases {
		sh, err := ParseShard(tc.in)
		got := sh.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("ParseShard(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// genStages makes n diffusion stages of random sizes, each with a CPU
// stage after it, and some img2img chains (a diffusion stage reading
// another through a CPU stage).
func genStages(n int, seed uint64) []Stage {
	rng := rand.New(rand.NewPCG(seed, 1))
	var st []Stage
	for i := range n {
		side := 64 * (1 + rng.IntN(8))
		g := Stage{ID: fmt.Sprintf("a%03d:gen", i), Kind: "gen", Version: "1", Resource: Accelerator,
			Params: map[string]any{"width": side, "height": side, "steps": 4 + rng.IntN(30), "prompt": "x"}}
		if i%7 == 3 {
			g.Deps = []string{fmt.Sprintf("a%03d:post", i-1)} // img2img from the previous asset
		}
		st = append(st, g, Stage{ID: fmt.Sprintf("a%03d:post", i), Kind: "post", Version: "1", Deps: []string{g.ID}})
	}
	pack := Stage{ID: "atlas:pack", Kind: "atlas", Version: "1"}
	for i := range min(n, 3) {
		pack.Deps = append(pack.Deps, fmt.Sprintf("a%03d:post", i))
	}
	st = append(st, pack)
	return st
}

// TestShardSplit: every diffusion stage is in exactly one shard, a
// stage shares its shard with the diffusion stages it reads from, the
// shards' costs differ by at most the largest group, and the split does
// not depend on the order the stages come in.
func TestShardSplit(t *testing.T) {
	for _, tc := range []struct{ stages, shards int }{{1, 1}, {5, 2}, {40, 3}, {100, 4}, {7, 10}} {
		t.Run(fmt.Sprintf("%d stages in %d shards", tc.stages, tc.shards), func(t *testing.T) {
			stages := genStages(tc.stages, uint64(tc.stages))
			dag, err := Graph(stages)
			if err != nil {
				t.Fatal(err)
			}
			all, _ := dag.Select(nil)
			groups, _, loads := dag.shardGroups(all, tc.shards)
			var biggest int64
			for _, g := range groups {
				biggest = max(biggest, g.cost)
			}
			if hi, lo := slices.Max(loads), slices.Min(loads); hi-lo > biggest {
				t.Errorf("loads %v differ by more than the largest group (%d)", loads, biggest)
			}
			owner := map[string]int{}
			var split []string
			for k := 1; k <= tc.shards; k++ {
				mask := dag.shardMask(all, Shard{k, tc.shards})
				var ids []string
				for i, s := range dag.stages {
					if !mask[i] {
						continue
					}
					ids = append(ids, s.ID)
					// What a stage reads is in its shard.
					for _, j := range dag.deps[i] {
						if !mask[j] {
							t.Errorf("shard %d has %s but not its dependency %s", k, s.ID, dag.stages[j].ID)
						}
					}
					if s.Resource == Accelerator {
						if prev, dup := owner[s.ID]; dup {
							t.Errorf("%s in shards %d and %d", s.ID, prev, k)
						}
						owner[s.ID] = k
					}
				}
				split = append(split, strings.Join(ids, ","))
			}
			for _, s := range stages {
				if s.Resource == Accelerator && owner[s.ID] == 0 {
					t.Errorf("%s is in no shard", s.ID)
				}
			}
			// The same stages in another order: the same split.
			shuffled := slices.Clone(stages)
			rand.New(rand.NewPCG(9, 9)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			dag2, err := Graph(shuffled)
			if err != nil {
				t.Fatal(err)
			}
			all2, _ := dag2.Select(nil)
			for k := 1; k <= tc.shards; k++ {
				mask := dag2.shardMask(all2, Shard{k, tc.shards})
				var ids []string
				for i, s := range dag2.stages {
					if mask[i] {
						ids = append(ids, s.ID)
					}
				}
				slices.Sort(ids)
				want := strings.Split(split[k-1], ",")
				slices.Sort(want)
				if strings.Join(ids, ",") != strings.Join(want, ",") && !(len(ids) == 0 && split[k-1] == "") {
					t.Errorf("shard %d differs when the stages are shuffled", k)
				}
			}
		})
	}
}

// TestShardByCost: one big stage and many small ones: the big one gets
// a shard of its own, not half of the stages.
func TestShardByCost(t *testing.T) {
	stages := []Stage{{ID: "big", Kind: "gen", Version: "1", Resource: Accelerator, Params: map[string]any{"width": 1024, "height": 1024, "steps": 30}}}
	for i := range 8 {
		stages = append(stages, Stage{ID: fmt.Sprintf("small%d", i), Kind: "gen", Version: "1", Resource: Accelerator,
			Params: map[string]any{"width": 64, "height": 64, "steps": 4}})
	}
	dag, err := Graph(stages)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := dag.Select(nil)
	m1 := dag.shardMask(all, Shard{1, 2})
	m2 := dag.shardMask(all, Shard{2, 2})
	count := func(m []bool) (n int) {
		for _, b := range m {
			if b {
				n++
			}
		}
		return n
	}
	if count(m1) != 1 || !m1[dag.index["big"]] || count(m2) != 8 {
		t.Errorf("shard 1 has %d stages (big: %v), shard 2 %d; want big alone, then the 8 small", count(m1), m1[dag.index["big"]], count(m2))
	}
	if c := stageCost(&stages[0]); c != 1024*1024*30 {
		t.Errorf("cost of big = %d", c)
	}
	if c := stageCost(&Stage{Params: "a string"}); c != 1 {
		t.Errorf("cost of a stage without sizes = %d, want 1", c)
	}
	if c := stageCost(&Stage{Params: map[string]any{"width": 1e300, "height": 1e300}}); c != maxStageCost {
		t.Errorf("huge cost = %d, want the cap", c)
	}
}

// TestShardThenAssemble: two shards push to a remote cache; a build in
// another clone then assembles everything from it, running no diffusion
// stage, with outputs equal to a single-machine build's.
func TestShardThenAssemble(t *testing.T) {
	rc := newMemRemote()
	stagesOf := func(p *project) []Stage {
		var st []Stage
		for i := range 6 {
			g := p.constStage(fmt.Sprintf("a%d:gen", i), strings.Repeat("x", i+1), fmt.Sprintf("a%d.png", i))
			g.Resource = Accelerator
			g.Params = map[string]any{"text": strings.Repeat("x", i+1), "width": 64 * (i + 1), "height": 64, "steps": 4}
			st = append(st, g, p.catStage(fmt.Sprintf("a%d:post", i), "!", fmt.Sprintf("a%d.txt", i), g.ID))
		}
		return st
	}
	single := newProject(t)
	single.build(stagesOf(single), single.opts())

	ran := map[string]int{}
	for k := 1; k <= 2; k++ {
		p := newProject(t)
		o := remoteOpts(p, rc, true)
		o.Shard = Shard{k, 2}
		rep := p.build(stagesOf(p), o)
		if rep.Shard == nil || rep.Shard.TotalStages != 6 || rep.Shard.Index != k || len(rep.Shard.Costs) != 2 {
			t.Fatalf("shard report %+v", rep.Shard)
		}
		for _, id := range p.takeRuns() {
			ran[id]++
		}
		if len(rep.Stages) != rep.Shard.Stages {
			t.Errorf("shard %d built %d stages, want its %d diffusion stages only", k, len(rep.Stages), rep.Shard.Stages)
		}
	}
	for i := range 6 {
		if id := fmt.Sprintf("a%d:gen", i); ran[id] != 1 {
			t.Errorf("%s ran %d times over the shards, want 1", id, ran[id])
		}
	}
	asm := newProject(t)
	rep := asm.build(stagesOf(asm), remoteOpts(asm, rc, false))
	for _, s := range rep.Stages {
		isGen := strings.HasSuffix(s.ID, ":gen")
		if isGen && s.Status != StatusRemote || !isGen && s.Status != StatusBuilt {
			t.Errorf("assemble: %s %s", s.ID, s.Status)
		}
	}
	for i := range 6 {
		for _, f := range []string{fmt.Sprintf("a%d.png", i), fmt.Sprintf("a%d.txt", i)} {
			if asm.read(f) != single.read(f) || asm.read(f) == "" {
				t.Errorf("%s: assembled %q, single machine %q", f, asm.read(f), single.read(f))
			}
		}
	}
}

// TestShardOptions: a bad shard is an error before anything runs.
func TestShardOptions(t *testing.T) {
	p := newProject(t)
	o := p.opts()
	o.Shard = Shard{3, 2}
	if _, err := Build(context.Background(), remoteStages(p), o); err == nil || !strings.Contains(err.Error(), "shard 3/2") {
		t.Errorf("Build with shard 3/2: %v", err)
	}
}
