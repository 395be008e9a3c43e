package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func st(id string, deps ...string) Stage {
	return Stage{ID: id, Asset: strings.Split(id, ":")[0], Kind: "k", Deps: deps, Where: id + ".kiln.yaml:1:3"}
}

func TestGraphErrors(t *testing.T) {
	withWhere := func(s Stage, where map[string]string) Stage { s.DepWhere = where; return s }
	withPub := func(s Stage, pub map[string]string) Stage { s.Publish = pub; return s }
	withFiles := func(s Stage, files ...string) Stage { s.Files = files; return s }
	tests := []struct {
		name   string
		stages []Stage
		want   string
	}{
		{
			name: "cycle with edge positions",
			stages: []Stage{
				withWhere(st("a", "b"), map[string]string{"b": "a.kiln.yaml:4:11"}),
				withWhere(st("b", "c"), map[string]string{"c": "b.kiln.yaml:7:11"}),
				withWhere(st("c", "a"), map[string]string{"a": "c.kiln.yaml:2:9"}),
				st("d"),
			},
			want: "dependency cycle: a → b → c → a\n" +
				"  a needs b (a.kiln.yaml:4:11)\n" +
				"  b needs c (b.kiln.yaml:7:11)\n" +
				"  c needs a (c.kiln.yaml:2:9)\n" +
				"remove one of these references to break the cycle",
		},
		{
			name:   "cycle found from a stage outside it starts at the cycle's first stage",
			stages: []Stage{st("x", "c"), st("c", "b"), st("b", "c")},
			want: "dependency cycle: c → b → c\n" +
				"  c needs b (c.kiln.yaml:1:3)\n" +
				"  b needs c (b.kiln.yaml:1:3)\n" +
				"remove one of these references to break the cycle",
		},
		{
			name:   "self dependency",
			stages: []Stage{{ID: "a", Deps: []string{"a"}}},
			want:   "dependency cycle: a → a\n  a needs a\nremove one of these references to break the cycle",
		},
		{
			name:   "unknown dependency at the reference",
			stages: []Stage{withWhere(st("a", "ghost"), map[string]string{"ghost": "a.kiln.yaml:5:9"})},
			want:   `a.kiln.yaml:5:9: stage "a" needs "ghost", which is not defined; check the reference or define that asset`,
		},
		{
			name:   "duplicate ids",
			stages: []Stage{st("a"), {ID: "a", Where: "other.kiln.yaml:9:3"}},
			want:   `other.kiln.yaml:9:3: duplicate stage id "a" (first defined at a.kiln.yaml:1:3); give each asset a unique id`,
		},
		{
			name:   "empty id",
			stages: []Stage{{Kind: "k", Where: "x.kiln.yaml:1:1"}},
			want:   `x.kiln.yaml:1:1: a stage of kind "k" has an empty id; every stage needs a unique id`,
		},
		{
			name:   "output escaping with ..",
			stages: []Stage{withPub(st("a"), map[string]string{"out": "../x.png"})},
			want:   `a.kiln.yaml:1:3: stage "a" output "out": path "../x.png" contains ".." and could leave the project; use a path inside the project without ".." elements`,
		},
		{
			name:   "absolute output",
			stages: []Stage{withPub(st("a"), map[string]string{"out": "/etc/x"})},
			want:   `a.kiln.yaml:1:3: stage "a" output "out": path "/etc/x" is absolute; use a path relative to the project`,
		},
		{
			name:   "drive letter output",
			stages: []Stage{withPub(st("a"), map[string]string{"out": `C:\x.png`})},
			want:   `a.kiln.yaml:1:3: stage "a" output "out": path "C:\\x.png" contains a backslash; use forward slashes (C:/x.png)`,
		},
		{
			name: "two stages publish one path",
			stages: []Stage{
				withPub(st("a"), map[string]string{"out": "x.png"}),
				withPub(st("b"), map[string]string{"out": "./x.png"}),
			},
			want: `b.kiln.yaml:1:3: stages "a" and "b" both publish "x.png"; give them different output paths`,
		},
		{
			name: "file and folder collide",
			stages: []Stage{
				withPub(st("a"), map[string]string{"out": "x"}),
				withPub(st("b"), map[string]string{"out": "x/y.png"}),
			},
			want: `b.kiln.yaml:1:3: stage "b" publishes "x/y.png" inside "x", which stage "a" publishes as a file; give them different output paths`,
		},
		{
			name:   "source file escaping",
			stages: []Stage{withFiles(st("a"), "../secret.png")},
			want:   `a.kiln.yaml:1:3: stage "a" source file: path "../secret.png" contains ".." and could leave the project; use a path inside the project without ".." elements`,
		},
		{
			name:   "all problems at once",
			stages: []Stage{st("a", "nope"), st("b", "gone")},
			want: `a.kiln.yaml:1:3: stage "a" needs "nope", which is not defined; check the reference or define that asset` + "\n" +
				`b.kiln.yaml:1:3: stage "b" needs "gone", which is not defined; check the reference or define that asset`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Graph(tc.stages)
			if err == nil {
				t.Fatal("Graph succeeded, want error")
			}
			var ge *GraphError
			if !errors.As(err, &ge) {
				t.Fatalf("error %T is not a *GraphError", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
		})
	}
}

func TestGraphOrder(t *testing.T) {
	tests := []struct {
		name   string
		stages []Stage
		want   string
	}{
		{"already ordered", []Stage{st("a"), st("b", "a"), st("c", "b")}, "a b c"},
		{"reversed", []Stage{st("c", "b"), st("b", "a"), st("a")}, "a b c"},
		{"independent keep input order", []Stage{st("z"), st("y"), st("x")}, "z y x"},
		{"diamond", []Stage{st("d", "b", "c"), st("c", "a"), st("b", "a"), st("a")}, "a c b d"},
		{"duplicate dep listed twice", []Stage{st("b", "a", "a"), st("a")}, "a b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Graph(tc.stages)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, s := range d.Stages() {
				ids = append(ids, s.ID)
			}
			if got := strings.Join(ids, " "); got != tc.want {
				t.Errorf("order = %s, want %s", got, tc.want)
			}
			// Every stage comes after its dependencies.
			pos := map[string]int{}
			for i, id := range ids {
				pos[id] = i
			}
			for _, s := range d.Stages() {
				for _, dep := range d.Deps(s.ID) {
					if pos[dep] >= pos[s.ID] {
						t.Errorf("%s comes before its dependency %s", s.ID, dep)
					}
				}
			}
		})
	}
	d, _ := Graph([]Stage{st("a"), st("b", "a", "a"), st("c", "a")})
	if got := strings.Join(d.Dependents("a"), ","); got != "b,c" {
		t.Errorf("Dependents(a) = %s, want b,c", got)
	}
	if got := strings.Join(d.Deps("b"), ","); got != "a" {
		t.Errorf("Deps(b) = %s, want a (deduplicated)", got)
	}
}

func TestSelect(t *testing.T) {
	d, err := Graph([]Stage{
		st("rock:gen"), st("rock:derive", "rock:gen"),
		st("moss:gen"), st("atlas:pack", "rock:derive", "moss:gen"),
		st("sky:gen"),
	})
	if err != nil {
		t.Fatal(err)
	}
	checkSelect(t, d, []selectCase{
		{nil, "rock:gen rock:derive moss:gen atlas:pack sky:gen", ""},
		{[]string{"rock"}, "rock:gen rock:derive", ""},
		{[]string{"atlas"}, "rock:gen rock:derive moss:gen atlas:pack", ""},
		{[]string{"rock:gen", "sky"}, "rock:gen sky:gen", ""},
		{[]string{"rok"}, "", `no asset or stage is called "rok"; did you mean "rock"?`},
		{[]string{"zzzzzzzzzz"}, "", "no asset or stage is called \"zzzzzzzzzz\"; `kiln graph` lists them"},
	})
}

func TestGraphFormats(t *testing.T) {
	stages := []Stage{
		{ID: "rock:gen", Asset: "rock", Kind: "image.generate", Resource: Accelerator, Device: "cuda:0"},
		{ID: "rock:derive", Asset: "rock", Kind: "pbr.derive", Deps: []string{"rock:gen"},
			DepWhere: map[string]string{"rock:gen": "a.kiln.yaml:3:5"}, Publish: map[string]string{"normal": "rock/normal.png"}},
		{ID: `odd"id`, Asset: `odd"id`, Kind: "k", Deps: []string{"rock:derive"}},
	}
	d, err := Graph(stages)
	if err != nil {
		t.Fatal(err)
	}
	var dot, mer, js bytes.Buffer
	if err := d.WriteDot(&dot); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteMermaid(&mer); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	wantDot := `digraph kiln {
  rankdir=LR;
  node [shape=box, fontname="sans-serif"];
  subgraph cluster_0 {
    label="rock";
    "rock:gen" [label="rock:gen\nimage.generate", style=bold];
    "rock:derive" [label="rock:derive\npbr.derive"];
  }
  subgraph cluster_1 {
    label="odd\"id";
    "odd\"id" [label="odd\"id\nk"];
  }
  "rock:gen" -> "rock:derive";
  "rock:derive" -> "odd\"id";
}
`
	if dot.String() != wantDot {
		t.Errorf("dot:\n%s\nwant:\n%s", dot.String(), wantDot)
	}
	wantMer := `flowchart LR
  subgraph a0["rock"]
    s0["rock:gen<br/>image.generate"]
    s1["rock:derive<br/>pbr.derive"]
  end
  subgraph a1["odd#quot;id"]
    s2["odd#quot;id<br/>k"]
  end
  s0 --> s1
  s1 --> s2
`
	if mer.String() != wantMer {
		t.Errorf("mermaid:\n%s\nwant:\n%s", mer.String(), wantMer)
	}
	var g graphJSON
	if err := json.Unmarshal(js.Bytes(), &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Stages) != 3 || g.Stages[0].Resource != "accelerator" || g.Stages[0].Device != "cuda:0" ||
		g.Stages[1].Deps[0] != (graphDepJSON{ID: "rock:gen", Where: "a.kiln.yaml:3:5"}) ||
		g.Stages[1].Publish["normal"] != "rock/normal.png" {
		t.Errorf("unexpected JSON graph:\n%s", js.String())
	}
}
