package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Graph drawings (dot, Mermaid) show data flow: an arrow goes from a stage
// to the stages that read its outputs. Stages are grouped by asset.

// assetGroups returns asset names in first-appearance order with their
// stage indexes.
func (d *DAG) assetGroups() ([]string, map[string][]int) {
	var order []string
	groups := map[string][]int{}
	for i, s := range d.stages {
		if _, ok := groups[s.Asset]; !ok {
			order = append(order, s.Asset)
		}
		groups[s.Asset] = append(groups[s.Asset], i)
	}
	return order, groups
}

// dotQuote quotes s as a Graphviz string.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// WriteDot writes the graph in Graphviz dot format (`dot -Tsvg`).
func (d *DAG) WriteDot(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "digraph kiln {")
	fmt.Fprintln(bw, "  rankdir=LR;")
	fmt.Fprintln(bw, "  node [shape=box, fontname=\"sans-serif\"];")
	order, groups := d.assetGroups()
	for g, asset := range order {
		indent := "  "
		if asset != "" {
			fmt.Fprintf(bw, "  subgraph cluster_%d {\n    label=%s;\n", g, dotQuote(asset))
			indent = "    "
		}
		for _, i := range groups[asset] {
			s := d.stages[i]
			attrs := ""
			if s.Resource == Accelerator {
				attrs = ", style=bold"
			}
			fmt.Fprintf(bw, "%s%s [label=%s%s];\n", indent, dotQuote(s.ID), dotQuote(s.ID+"\n"+s.Kind), attrs)
		}
		if asset != "" {
			fmt.Fprintln(bw, "  }")
		}
	}
	for i, s := range d.stages {
		for _, j := range d.deps[i] {
			fmt.Fprintf(bw, "  %s -> %s;\n", dotQuote(d.stages[j].ID), dotQuote(s.ID))
		}
	}
	fmt.Fprintln(bw, "}")
	return bw.Flush()
}

// mermaidLabel escapes s for a quoted Mermaid label.
func mermaidLabel(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", "<br/>")
	return `"` + r.Replace(s) + `"`
}

// WriteMermaid writes the graph as a Mermaid flowchart (renders in GitHub
// and GitLab markdown).
func (d *DAG) WriteMermaid(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "flowchart LR")
	order, groups := d.assetGroups()
	for g, asset := range order {
		indent := "  "
		if asset != "" {
			fmt.Fprintf(bw, "  subgraph a%d[%s]\n", g, mermaidLabel(asset))
			indent = "    "
		}
		for _, i := range groups[asset] {
			s := d.stages[i]
			fmt.Fprintf(bw, "%ss%d[%s]\n", indent, i, mermaidLabel(s.ID+"\n"+s.Kind))
		}
		if asset != "" {
			fmt.Fprintln(bw, "  end")
		}
	}
	for i := range d.stages {
		for _, j := range d.deps[i] {
			fmt.Fprintf(bw, "  s%d --> s%d\n", j, i)
		}
	}
	return bw.Flush()
}

// graphJSON is the shape of WriteJSON's output.
type graphJSON struct {
	Stages []graphStageJSON `json:"stages"`
}

type graphStageJSON struct {
	ID       string            `json:"id"`
	Asset    string            `json:"asset"`
	Kind     string            `json:"kind"`
	Version  string            `json:"version"`
	Where    string            `json:"where,omitempty"`
	Resource string            `json:"resource"`
	Device   string            `json:"device,omitempty"`
	Deps     []graphDepJSON    `json:"deps,omitempty"`
	Files    []string          `json:"files,omitempty"`
	Models   []string          `json:"models,omitempty"`
	Publish  map[string]string `json:"publish,omitempty"`
}

type graphDepJSON struct {
	ID    string `json:"id"`
	Where string `json:"where,omitempty"`
}

// WriteJSON writes the graph as JSON: the stages in dependency order, each
// with its dependencies (and where each was referenced), source files,
// model fingerprints and published outputs.
func (d *DAG) WriteJSON(w io.Writer) error {
	g := graphJSON{Stages: make([]graphStageJSON, len(d.stages))}
	for i, s := range d.stages {
		gs := graphStageJSON{
			ID: s.ID, Asset: s.Asset, Kind: s.Kind, Version: s.Version, Where: s.Where,
			Resource: s.Resource.String(), Files: s.Files, Models: s.Models, Publish: s.Publish,
		}
		if s.Resource == Accelerator {
			gs.Device = deviceName(s.Device)
		}
		for _, j := range d.deps[i] {
			id := d.stages[j].ID
			gs.Deps = append(gs.Deps, graphDepJSON{ID: id, Where: s.DepWhere[id]})
		}
		g.Stages[i] = gs
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(g)
}

// deviceName names an accelerator device, "default" when unset.
func deviceName(dev string) string {
	if dev == "" {
		return "default"
	}
	return dev
}
