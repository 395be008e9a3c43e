package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Hard limits of the YAML reader. They are not configurable: they protect
// the machine from hostile or broken files, not a studio's style.
const (
	// MaxDepth is the deepest nesting of mappings and lists a file may have.
	// kiln's own format needs fewer than ten levels.
	MaxDepth = 64
	// aliasAllowance is how many nodes alias expansion may add on top of
	// the file's own node count (plus four times that count) before kiln
	// calls it an alias bomb.
	aliasAllowance = 100_000
	// maxErrorsPerFile stops a pathological file from producing millions
	// of messages.
	maxErrorsPerFile = 200
)

// value is one decoded YAML value with the position it came from.
type value struct {
	pos Pos
	v   any // string, int64, float64, bool, []*value, *object, *yaml.Node (raw), or a converted type
}

// object is a decoded mapping: its fields in file order, each with where
// its name is written and its value (nil when the value was bad and has
// been reported, or was dropped). Objects have a handful of fields, so a
// slice beats maps here, and keeps file order.
type object struct {
	pos  Pos
	ents []entry
}

type entry struct {
	name string
	key  Pos
	v    *value
}

func newObject(pos Pos) *object { return &object{pos: pos} }

func (o *object) find(name string) int {
	if o == nil {
		return -1
	}
	for i := range o.ents {
		if o.ents[i].name == name {
			return i
		}
	}
	return -1
}

// has reports whether the field was written, even if its value was bad.
func (o *object) has(name string) bool { return o.find(name) >= 0 }

// get returns the decoded value of a field.
func (o *object) get(name string) (*value, bool) {
	if i := o.find(name); i >= 0 && o.ents[i].v != nil {
		return o.ents[i].v, true
	}
	return nil, false
}

// keyAt returns where the field's name is written.
func (o *object) keyAt(name string) Pos {
	if i := o.find(name); i >= 0 {
		return o.ents[i].key
	}
	return o.pos
}

// set records a field, replacing an earlier one of the same name.
func (o *object) set(name string, key Pos, v *value) {
	if i := o.find(name); i >= 0 {
		o.ents[i] = entry{name, key, v}
		return
	}
	o.ents = append(o.ents, entry{name, key, v})
}

// drop forgets a field's value (it stays "written").
func (o *object) drop(name string) {
	if i := o.find(name); i >= 0 {
		o.ents[i].v = nil
	}
}

func (o *object) sub(name string) *object {
	if v, ok := o.get(name); ok {
		if s, ok := v.v.(*object); ok {
			return s
		}
	}
	return nil
}

// decoder turns the yaml.Node tree of one file into values, collecting
// every problem instead of stopping at the first.
type decoder struct {
	file   string
	lim    *Limits
	models map[string]*Model // configured models, for model references
	errs   ErrorList

	visits, budget int
	aliasDepth     int
	aliasPos       Pos
	bombed         bool
	tooMany        bool
}

func newDecoder(file string, lim *Limits, models map[string]*Model) *decoder {
	return &decoder{file: file, lim: lim, models: models, budget: math.MaxInt}
}

func (d *decoder) pos(n *yaml.Node) Pos {
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

// add records a problem, unless the file already has too many.
func (d *decoder) add(pos Pos, field, msg, hint string) {
	if d.tooMany {
		return
	}
	if len(d.errs) >= maxErrorsPerFile {
		d.tooMany = true
		d.errs = append(d.errs, &Error{Pos: Pos{File: d.file}, Msg: fmt.Sprintf("more than %d problems; stopped checking this file", maxErrorsPerFile), Hint: "fix the ones above and run again"})
		return
	}
	d.errs = append(d.errs, &Error{Pos: pos, Field: field, Msg: msg, Hint: hint})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses one YAML document into a node tree without expanding
// aliases. Any failure, including a panic inside the YAML library, becomes
// an Error with the best position available.
func parseYAML(file string, data []byte) (root *yaml.Node, e *Error) {
	defer func() {
		if r := recover(); r != nil {
			root, e = nil, &Error{Pos: Pos{File: file}, Msg: fmt.Sprintf("invalid YAML: the parser failed (%v)", r), Hint: "check the file's syntax"}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(file, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &Error{Pos: Pos{File: file, Line: extra.Line, Col: extra.Column}, Msg: "more than one YAML document in the file", Hint: `remove the "---" separator; kiln reads one document per file`}
	case !errors.Is(err, io.EOF):
		return nil, yamlError(file, data, err)
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

func yamlError(file string, data []byte, err error) *Error {
	msg := err.Error()
	if strings.Contains(msg, "exceeded max depth") {
		// The YAML library gives no position; find the bracket that
		// went too deep.
		line, col := flowDepthPos(data, MaxDepth)
		return &Error{Pos: Pos{File: file, Line: line, Col: col}, Msg: fmt.Sprintf("YAML nesting is deeper than %d levels", MaxDepth), Hint: "flatten the structure"}
	}
	return syntaxError(file, data, err)
}

// flowDepthPos returns the line and column (1-based, in characters) of
// the first "[" or "{" nested more than max deep in data, skipping quoted
// strings and comments, or 0, 0 when there is none. It only locates an
// error the YAML parser already found (a parser limit that comes without
// a position), so an approximate reading of YAML is enough.
func flowDepthPos(data []byte, max int) (line, col int) {
	line, col = 1, 0
	depth := 0
	var quote rune // the open quote, or 0
	comment := false
	prev := ' '
	for _, r := range string(data) {
		col++
		switch {
		case r == '\n':
			line, col, comment = line+1, 0, false
			if quote == 0 {
				prev = ' '
				continue
			}
		case comment:
		case quote == '"' && r == '\\' && prev == '\\':
			r = 0 // an escaped backslash escapes nothing after it
		case quote != 0:
			if r == quote && !(quote == '"' && prev == '\\') {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			comment = true
		case r == '[' || r == '{':
			depth++
			if depth > max {
				return line, col
			}
		case r == ']' || r == '}':
			depth--
		}
		prev = r
	}
	return 0, 0
}

// prewalk checks nesting depth and counts the nodes of the tree as
// written (aliases not expanded). The count sets the alias budget: a file
// may expand aliases to a few times its own size, never to millions of
// nodes.
func (d *decoder) prewalk(root *yaml.Node) bool {
	type item struct {
		n     *yaml.Node
		depth int
	}
	stack := []item{{root, 0}}
	count := 0
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		count++
		if it.depth > MaxDepth {
			d.add(d.pos(it.n), "", fmt.Sprintf("YAML nesting is deeper than %d levels", MaxDepth), "flatten the structure")
			return false
		}
		for _, c := range it.n.Content {
			dep := it.depth
			if c.Kind == yaml.MappingNode || c.Kind == yaml.SequenceNode {
				dep++
			}
			stack = append(stack, item{c, dep})
		}
	}
	d.budget = 5*count + aliasAllowance
	// Expanded size, aliases followed, memoised per node: linear in the
	// file, and it finds a billion laughs wherever it sits, even under a
	// key nothing reads.
	// Only anchored nodes can be reached twice, so only they are memoised.
	memo := map[*yaml.Node]int{}
	var size func(n *yaml.Node) int
	size = func(n *yaml.Node) int {
		if n.Anchor != "" {
			if v, ok := memo[n]; ok {
				return v
			}
			memo[n] = d.budget + 1 // a cycle (the parser refuses them) counts as too big
		}
		total := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			total += size(n.Alias)
		}
		for _, c := range n.Content {
			total += size(c)
			if total > d.budget {
				if !d.bombed && c.Kind == yaml.AliasNode {
					// Point at the alias whose expansion broke the budget.
					d.bombed = true
					d.add(d.pos(c), "", fmt.Sprintf("YAML aliases expand to more than %d nodes", d.budget), `this looks like a "billion laughs" alias bomb; use fewer or smaller aliases`)
				}
				break
			}
		}
		if total > d.budget {
			total = d.budget + 1
		}
		if n.Anchor != "" {
			memo[n] = total
		}
		return total
	}
	if size(root) > d.budget {
		if !d.bombed {
			d.bombed = true
			d.add(d.pos(root), "", fmt.Sprintf("YAML aliases expand to more than %d nodes", d.budget), `this looks like a "billion laughs" alias bomb; use fewer or smaller aliases`)
		}
		return false
	}
	return true
}

// enter follows an alias and counts the visit against the alias budget
// (a second line of defence behind prewalk's structural check). It
// returns nil once the budget is spent.
func (d *decoder) enter(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		if d.aliasDepth == 0 {
			d.aliasPos = d.pos(n)
		}
		n = n.Alias
	}
	if d.bombed || n == nil {
		return nil
	}
	d.visits++
	if d.visits > d.budget {
		d.bombed = true
		pos := d.aliasPos
		if !pos.IsValid() {
			pos = d.pos(n)
		}
		d.add(pos, "", fmt.Sprintf("YAML aliases expand to more than %d nodes", d.budget), `this looks like a "billion laughs" alias bomb; use fewer or smaller aliases`)
		return nil
	}
	return n
}

// describe says what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing (an empty value)"
	case "!!int", "!!float", "!!bool":
		return n.Value
	}
	return quote(n.Value)
}

// knownTag reports whether the node carries one of the YAML core tags kiln
// understands; anything else ("!include", "!!binary", ...) is refused.
func (d *decoder) knownTag(n *yaml.Node, path string) bool {
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq", "!!timestamp":
		return true
	}
	d.add(d.pos(n), path, fmt.Sprintf("unsupported YAML tag %s", quote(n.Tag)), "remove the tag; kiln reads plain values")
	return false
}

// decode reads n according to s. It returns nil when the value is bad
// (after recording why) or when the alias budget is spent.
func (d *decoder) decode(s *spec, n *yaml.Node, path string) *value {
	if n.Kind == yaml.AliasNode {
		d.aliasDepth++
		defer func() { d.aliasDepth-- }()
	}
	n = d.enter(n)
	if n == nil {
		return nil
	}
	if !d.knownTag(n, path) {
		return nil
	}
	var v *value
	switch s.kind {
	case kObject:
		v = d.decodeObject(s, n, path)
	case kList:
		v = d.decodeList(s, n, path)
	case kMap:
		v = d.decodeMap(s, n, path)
	case kAnyOf:
		v = d.decodeAnyOf(s, n, path)
	case kRaw:
		v = &value{pos: d.pos(n), v: n}
	default:
		v = d.decodeScalar(s, n, path)
	}
	if v != nil && s.post != nil {
		out, ok := s.post(d, path, v)
		if !ok {
			return nil
		}
		v.v = out
	}
	return v
}

func (d *decoder) typeError(s *spec, n *yaml.Node, path string) {
	hint := ""
	switch tag := n.ShortTag(); {
	case tag == "!!null" && s.nullHint != "":
		hint = s.nullHint
	case s.kind == kString && n.Kind == yaml.ScalarNode && (tag == "!!int" || tag == "!!float" || tag == "!!bool" || tag == "!!timestamp"):
		hint = "quote it: " + quote(n.Value)
	case s.kind == kList && n.Kind == yaml.ScalarNode && tag != "!!null":
		hint = "write a list: [" + n.Value + "]"
	}
	d.add(d.pos(n), path, fmt.Sprintf("expected %s, got %s", s.what(), describe(n)), hint)
}

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries with YAML merge keys ("<<: *base")
// applied: keys written in the mapping win over merged ones, and earlier
// merge sources win over later ones. Duplicate keys are reported.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var out []pair
	seen := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(d.pos(k), path, "a field name must be a plain word, got "+describe(k), "")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.add(d.pos(k), join(path, k.Value), fmt.Sprintf("duplicate field %s: also set at %s", quote(k.Value), d.pos(first)), "remove one of them")
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	for _, m := range merges {
		for _, src := range d.mergeSources(m, path) {
			for _, p := range d.pairs(src, path) {
				if d.bombed {
					return out
				}
				if _, ok := seen[p.key.Value]; ok {
					continue
				}
				seen[p.key.Value] = p.key
				out = append(out, p)
			}
		}
	}
	return out
}

// mergeSources resolves the value of a "<<" key to the mappings it merges.
func (d *decoder) mergeSources(v *yaml.Node, path string) []*yaml.Node {
	d.aliasDepth++
	defer func() { d.aliasDepth-- }()
	n := d.enter(v)
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{n}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range n.Content {
			m := d.enter(c)
			if m == nil {
				return out
			}
			if m.Kind != yaml.MappingNode {
				d.add(d.pos(c), path, "a << merge list must hold mappings, got "+describe(m), "")
				continue
			}
			out = append(out, m)
		}
		return out
	}
	d.add(d.pos(v), path, "a << merge needs a mapping or a list of mappings, got "+describe(n), "")
	return nil
}

func (d *decoder) decodeObject(s *spec, n *yaml.Node, path string) *value {
	o := newObject(d.pos(n))
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// "texture:" with nothing under it is an empty block.
		return &value{pos: o.pos, v: o}
	}
	if n.Kind != yaml.MappingNode {
		d.typeError(s, n, path)
		return nil
	}
	o.ents = make([]entry, 0, len(n.Content)/2)
	for _, p := range d.pairs(n, path) {
		if d.bombed {
			return nil
		}
		name := p.key.Value
		if s.extensions && strings.HasPrefix(name, "x-") {
			continue // free-form: a place for anchors (x-base: &base {...})
		}
		f := s.field(name)
		if f == nil {
			d.unknownField(s, name, d.pos(p.key), join(path, name))
			continue
		}
		o.ents = append(o.ents, entry{name, d.pos(p.key), d.decode(f.spec, p.val, join(path, name))})
	}
	for _, f := range s.fields {
		if f.required && !o.has(f.name) {
			d.add(o.pos, path, fmt.Sprintf("missing required field %q", f.name), f.requiredHint)
		}
	}
	if s.check != nil && !d.bombed {
		s.check(d, path, o)
	}
	return &value{pos: o.pos, v: o}
}

func (d *decoder) unknownField(s *spec, name string, pos Pos, path string) {
	names := s.fieldNames()
	hint := ""
	if alt, ok := s.aliases[name]; ok {
		hint = fmt.Sprintf("did you mean %q?", alt)
	} else if h := didYouMean(name, names); h != "" {
		hint = h
	} else {
		hint = "expected one of: " + joinNames(names)
		if s.extensions {
			hint += `; keys starting with "x-" are free, e.g. for anchors`
		}
	}
	d.add(pos, path, fmt.Sprintf("unknown field %s", quote(name)), hint)
}

func (d *decoder) decodeList(s *spec, n *yaml.Node, path string) *value {
	pos := d.pos(n)
	var items []*value
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
	case n.Kind == yaml.SequenceNode:
		ok := true
		for i, c := range n.Content {
			v := d.decode(s.elem, c, index(path, i))
			if d.bombed {
				return nil
			}
			if v == nil {
				ok = false
				continue
			}
			items = append(items, v)
		}
		if !ok {
			// Keep the good items of a plain list (include:, exemplars:)
			// so references in them are still checked; a list that
			// converts to something else (a size) is dropped.
			if s.post != nil || s.minItems > 1 {
				return nil
			}
			return &value{pos: pos, v: items}
		}
	default:
		d.typeError(s, n, path)
		return nil
	}
	if len(items) < s.minItems {
		if s.minItems == 1 {
			d.add(pos, path, "must not be empty", s.emptyHint)
		} else {
			d.add(pos, path, fmt.Sprintf("needs %d items, got %d", s.minItems, len(items)), "")
		}
		return nil
	}
	if max, name := d.maxOf(s); max >= 0 && len(items) > max {
		if name != "" {
			d.add(pos, path, fmt.Sprintf("%d items is more than limits.%s (%d)", len(items), name, max), "use fewer, or raise limits."+name+" in kiln.yaml")
		} else if s.minItems == max {
			d.add(pos, path, fmt.Sprintf("needs %d items, got %d", max, len(items)), "")
		} else {
			d.add(pos, path, fmt.Sprintf("at most %d items allowed, got %d", max, len(items)), "")
		}
		return nil
	}
	if s.unique {
		seen := map[string]Pos{}
		for i, it := range items {
			k := fmt.Sprint(it.v)
			if first, dup := seen[k]; dup {
				d.add(it.pos, index(path, i), fmt.Sprintf("%s is listed twice: also at %s", quote(k), first), "remove one")
				return nil
			}
			seen[k] = it.pos
		}
	}
	return &value{pos: pos, v: items}
}

// maxOf returns the effective maximum of s (a configured limit or a static
// bound) and the limit's name, or -1 when unbounded.
func (d *decoder) maxOf(s *spec) (int, string) {
	if s.limit != nil {
		return s.limit(d.lim), s.limitName
	}
	if s.maxItems > 0 {
		return s.maxItems, ""
	}
	return -1, ""
}

// accepts reports whether a node has the shape a spec can read, so an
// anyOf can pick its variant.
func (s *spec) accepts(n *yaml.Node) bool {
	tag := n.ShortTag()
	switch s.kind {
	case kObject, kMap:
		return n.Kind == yaml.MappingNode
	case kList:
		return n.Kind == yaml.SequenceNode
	case kInt:
		return n.Kind == yaml.ScalarNode && tag == "!!int"
	case kNumber:
		return n.Kind == yaml.ScalarNode && (tag == "!!int" || tag == "!!float")
	case kBool:
		return n.Kind == yaml.ScalarNode && tag == "!!bool"
	case kEnum:
		return n.Kind == yaml.ScalarNode && tag == "!!str"
	case kString:
		if s.strict {
			return n.Kind == yaml.ScalarNode && tag == "!!str"
		}
		return n.Kind == yaml.ScalarNode && tag != "!!null"
	}
	return false
}

func (d *decoder) decodeAnyOf(s *spec, n *yaml.Node, path string) *value {
	for _, alt := range s.alts {
		if alt.kind == kEnum && alt.accepts(n) && !contains(alt.enum, n.Value) {
			// metallic: shiny: say "a number or "map"", not just ""map"".
			d.add(d.pos(n), path, fmt.Sprintf("expected %s, got %s", s.what(), describe(n)), didYouMean(n.Value, alt.enum))
			return nil
		}
		if alt.accepts(n) {
			return d.decode(alt, n, path)
		}
	}
	d.typeError(s, n, path)
	return nil
}

func (d *decoder) decodeScalar(s *spec, n *yaml.Node, path string) *value {
	pos := d.pos(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.typeError(s, n, path)
		return nil
	}
	tag := n.ShortTag()
	switch s.kind {
	case kString:
		if s.strict && tag != "!!str" {
			d.typeError(s, n, path)
			return nil
		}
		if s.nonEmpty && strings.TrimSpace(n.Value) == "" {
			d.add(pos, path, "must not be empty", s.emptyHint)
			return nil
		}
		if s.limit != nil {
			if max := s.limit(d.lim); len([]rune(n.Value)) > max {
				d.add(pos, path, fmt.Sprintf("%d characters is more than limits.%s (%d)", len([]rune(n.Value)), s.limitName, max), "shorten it, or raise limits."+s.limitName+" in kiln.yaml")
				return nil
			}
		}
		return &value{pos: pos, v: n.Value}
	case kEnum:
		if tag != "!!str" || !contains(s.enum, n.Value) {
			hint := didYouMean(n.Value, s.enum)
			d.add(pos, path, fmt.Sprintf("expected %s, got %s", s.what(), describe(n)), hint)
			return nil
		}
		return &value{pos: pos, v: n.Value}
	case kBool:
		if tag != "!!bool" {
			d.typeError(s, n, path)
			return nil
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		return &value{pos: pos, v: b}
	case kInt:
		if tag != "!!int" {
			d.typeError(s, n, path)
			return nil
		}
		var i int64
		if err := n.Decode(&i); err != nil {
			d.add(pos, path, fmt.Sprintf("integer %s is too large", n.Value), "")
			return nil
		}
		if !d.inRange(s, float64(i), path, pos, strconv.FormatInt(i, 10)) {
			return nil
		}
		return &value{pos: pos, v: i}
	case kNumber:
		if tag != "!!int" && tag != "!!float" {
			d.typeError(s, n, path)
			return nil
		}
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.add(pos, path, fmt.Sprintf("expected a finite number, got %s", n.Value), "")
			return nil
		}
		if !d.inRange(s, f, path, pos, n.Value) {
			return nil
		}
		return &value{pos: pos, v: f}
	}
	d.typeError(s, n, path)
	return nil
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// inRange checks a number against the spec's static bounds and configured
// limit, recording a message that names the bound.
func (d *decoder) inRange(s *spec, f float64, path string, pos Pos, text string) bool {
	if s.limit != nil {
		max := float64(s.limit(d.lim))
		if s.hasMin && f < s.min {
			d.add(pos, path, fmt.Sprintf("must be between %s and limits.%s (%s), got %s", fmtNum(s.min), s.limitName, fmtNum(max), text), "")
			return false
		}
		if f > max {
			d.add(pos, path, fmt.Sprintf("%s is more than limits.%s (%s)", text, s.limitName, fmtNum(max)), "lower it, or raise limits."+s.limitName+" in kiln.yaml")
			return false
		}
		return true
	}
	switch {
	case s.hasMin && s.hasMax && (f < s.min || f > s.max || (s.exclMin && f == s.min)):
		if s.exclMin {
			d.add(pos, path, fmt.Sprintf("must be more than %s and at most %s, got %s", fmtNum(s.min), fmtNum(s.max), text), "")
		} else {
			d.add(pos, path, fmt.Sprintf("must be between %s and %s, got %s", fmtNum(s.min), fmtNum(s.max), text), "")
		}
		return false
	case s.hasMin && s.exclMin && f <= s.min:
		d.add(pos, path, fmt.Sprintf("must be more than %s, got %s", fmtNum(s.min), text), "")
		return false
	case s.hasMin && f < s.min:
		d.add(pos, path, fmt.Sprintf("must be at least %s, got %s", fmtNum(s.min), text), "")
		return false
	case s.hasMax && f > s.max:
		d.add(pos, path, fmt.Sprintf("must be at most %s, got %s", fmtNum(s.max), text), "")
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
