package manifests

import (
	"bytes"
	"fmt"
	"image/color"
	"sort"
	"strings"
	"time"
)

// merge overlays objects: later layers win field by field, and nested
// blocks (texture:, sprite.pixel_art:, ...) merge recursively, so a
// manifest can change one sprite option without repeating the others.
func merge(layers ...*object) *object {
	var out *object
	for _, l := range layers {
		if l == nil {
			continue
		}
		if out == nil {
			n := 0
			for _, l := range layers {
				if l != nil {
					n += len(l.ents)
				}
			}
			out = &object{pos: l.pos, ents: make([]entry, 0, n)}
		}
		out.pos = l.pos
		for _, e := range l.ents {
			i := out.find(e.name)
			switch {
			case i < 0:
				out.ents = append(out.ents, e)
			case e.v == nil:
				out.ents[i].key = e.key // written here, but bad: keep the lower value
			default:
				prev := out.ents[i].v
				if prev != nil {
					po, ok1 := prev.v.(*object)
					no, ok2 := e.v.v.(*object)
					if ok1 && ok2 {
						e.v = &value{pos: e.v.pos, v: merge(po, no)}
					}
				}
				out.ents[i] = e
			}
		}
	}
	if out == nil {
		out = newObject(Pos{})
	}
	return out
}

// recordWhere notes the position of every field of o (recursively) under
// its dotted path.
func recordWhere(o *object, prefix string, where map[string]Pos) {
	if o == nil {
		return
	}
	for _, e := range o.ents {
		if e.v == nil {
			continue
		}
		key := join(prefix, e.name)
		where[key] = e.v.pos
		if sub, ok := e.v.v.(*object); ok {
			recordWhere(sub, key, where)
		}
	}
}

// binder reads a merged object, falling back to the defaults written in
// the spec tables, so the documented (and schema) default is the default.
type binder struct {
	o *object
	s *spec
}

func (b binder) has(name string) bool {
	_, ok := b.o.get(name)
	return ok
}

func (b binder) get(name string) any {
	if v, ok := b.o.get(name); ok {
		return v.v
	}
	if f := b.s.field(name); f != nil {
		return f.spec.def
	}
	return nil
}

func (b binder) sub(name string) binder {
	f := b.s.field(name)
	if f == nil {
		panic("manifests: no field " + name) // a bug in this package, not bad input
	}
	return binder{o: b.o.sub(name), s: f.spec}
}

func (b binder) str(name string) string {
	s, _ := b.get(name).(string)
	return s
}

func (b binder) int(name string) int {
	switch x := b.get(name).(type) {
	case int64:
		return int(x)
	case int:
		return x
	}
	return 0
}

func (b binder) float(name string) float64 {
	switch x := b.get(name).(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	}
	return 0
}

func (b binder) bool(name string) bool {
	x, _ := b.get(name).(bool)
	return x
}

func (b binder) strs(name string) []string {
	switch x := b.get(name).(type) {
	case []*value:
		out := make([]string, len(x))
		for i, v := range x {
			out[i] = v.v.(string)
		}
		return out
	case []string:
		return append([]string(nil), x...)
	}
	return nil
}

func (b binder) floats(name string) []float64 {
	switch x := b.get(name).(type) {
	case []*value:
		out := make([]float64, len(x))
		for i, v := range x {
			out[i] = v.v.(float64)
		}
		return out
	case []float64:
		return append([]float64(nil), x...)
	case [2]float64:
		return x[:]
	}
	return nil
}

func (b binder) pair(name string) [2]float64 {
	f := b.floats(name)
	if len(f) != 2 {
		return [2]float64{}
	}
	return [2]float64{f[0], f[1]}
}

func (b binder) size(name string) Size {
	s, _ := b.get(name).(Size)
	return s
}

func (b binder) texRef(name string) *TexRef {
	r, _ := b.get(name).(*TexRef)
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// resolver builds the project from decoded files and checks what needs
// the whole project: defaults, references, duplicate ids.
type resolver struct {
	specs    *specs
	cfg      *Config
	errs     ErrorList
	proj     *Project
	entries  map[any]string     // entry -> field path, e.g. "assets[3]"
	atlasObj map[*Atlas]*object // an atlas's own fields, for include positions
	refs     []refUse           // material texture references to check
	// exemplarPos are the positions of each asset's exemplars, item by
	// item, for messages about the files.
	exemplarPos map[*Asset][]Pos
	// broken holds the text of each manifest that could not be parsed
	// (invalid YAML, an unsupported version), by file name. A reference
	// to an id that may be defined in one of them is not reported: the
	// file's own error says what to fix, and the reference is checked
	// again once it parses.
	broken map[string][]byte
}

// maybeInBroken reports whether text, an id or the literal start of an id
// pattern, appears in a manifest that could not be parsed.
func (r *resolver) maybeInBroken(text string) bool {
	for _, data := range r.broken {
		if bytes.Contains(data, []byte(text)) {
			return true
		}
	}
	return false
}

// refUse is one material slot reference awaiting the whole project.
type refUse struct {
	ref   *TexRef
	field string  // e.g. "materials[0].normal"
	def   string  // map a texture asset gives when ref names none ("" = orm or ao)
	also  *TexRef // a second slot set by the same field (orm), resolved alike
}

func (r *resolver) add(pos Pos, field, msg, hint string) {
	r.errs = append(r.errs, &Error{Pos: pos, Field: field, Msg: msg, Hint: hint})
}

// kindDefaults returns the part of a defaults block that applies to an
// asset of the given kind.
func (r *resolver) kindDefaults(def *object, kind Kind) *object {
	if def == nil {
		return nil
	}
	out := &object{pos: def.pos, ents: make([]entry, 0, len(def.ents))}
	for _, e := range def.ents {
		f := r.specs.asset.field(e.name)
		if f == nil || (f.kinds != nil && !containsKind(f.kinds, kind)) {
			continue
		}
		out.ents = append(out.ents, e)
	}
	return out
}

func defaultsObj(d *Defaults) *object {
	if d == nil {
		return nil
	}
	return d.obj
}

// asset resolves one entry of assets:.
func (r *resolver) asset(f *fileDecl, path string, o *object) *Asset {
	idv, ok1 := o.get("id")
	kv, ok2 := o.get("kind")
	if !ok1 || !ok2 {
		return nil // already reported
	}
	kind := Kind(kv.v.(string))
	cfgDef := r.kindDefaults(defaultsObj(r.cfg.Defaults), kind)
	fileDef := r.kindDefaults(defaultsObj(f.defaults), kind)
	m := merge(cfgDef, fileDef, o)
	m.pos = o.pos
	a := &Asset{ID: idv.v.(string), Kind: kind, File: f.name, Pos: o.pos, Where: make(map[string]Pos, len(m.ents)+4)}
	b := binder{o: m, s: r.specs.asset}

	if kind.Generated() {
		a.Model = b.str("model")
		if !b.has("model") {
			switch len(r.cfg.Models) {
			case 0:
				a.Model = Exemplar
			case 1:
				a.Model = sortedKeys(r.cfg.Models)[0]
			default:
				r.add(o.pos, path, "no model for this asset",
					fmt.Sprintf("set model: here, or defaults: {model: NAME} in kiln.yaml (models: %s)", joinNames(sortedKeys(r.cfg.Models))))
			}
		}
		mod := r.cfg.Model(a.Model)
		isExemplar := mod != nil && mod.Builtin == "exemplar"
		if ev, ok := m.get("exemplars"); ok && !isExemplar {
			if own, ok := o.get("exemplars"); ok && own == ev {
				if a.Model != "" {
					r.add(ev.pos, join(path, "exemplars"), fmt.Sprintf("exemplars need the %s model, but this asset uses model %q", Exemplar, a.Model),
						"remove exemplars, or use a model whose path is "+Exemplar)
				}
			}
			m.drop("exemplars") // inherited exemplars only apply to the exemplar model
		}
	}
	recordWhere(m, "", a.Where)
	if !kind.Generated() {
		a.Tags = b.strs("tags")
		a.Image = &ImageOptions{Source: b.sub("image").str("source")}
		return a
	}

	a.Prompt = b.str("prompt")
	a.NegativePrompt = b.str("negative_prompt")
	if b.has("seed") {
		a.Seed = int64(b.get("seed").(int64))
	} else {
		a.Seed = DefaultSeed(a.ID)
	}
	a.Steps = b.int("steps")
	if b.has("guidance") {
		g := b.float("guidance")
		a.Guidance = &g
	}
	if sc, ok := b.get("scheduler").(schedulerChoice); ok {
		a.Scheduler, a.SchedulerOptions = sc.name, sc.opt
	}
	a.Size = b.size("size")
	a.Strength = b.float("strength")
	a.From = b.str("from")
	a.Pick = b.int("pick")
	r.resolveInpaint(a, path, o, b)
	a.Exemplars = b.strs("exemplars")
	if ev, ok := m.get("exemplars"); ok {
		if items, ok := ev.v.([]*value); ok {
			for _, it := range items {
				r.exemplarPos[a] = append(r.exemplarPos[a], it.pos)
			}
		}
	}
	a.Tags = b.strs("tags")
	a.LoRAs = loraList(b.get("loras"))

	if a.Prompt == "" && len(a.Exemplars) == 0 && !o.has("prompt") {
		r.add(o.pos, path, `missing required field "prompt"`, `describe the picture, e.g. prompt: "mossy stone floor"`)
	}
	if o.has("strength") && !o.has("from") && a.From == "" {
		r.add(o.keyAt("strength"), join(path, "strength"), "strength applies only with from:", "remove it, or set from: ASSET_ID")
	}
	if o.has("pick") && a.From == "" {
		r.add(o.keyAt("pick"), join(path, "pick"), "pick applies only with from:", "remove it, or set from: ASSET_ID")
	}
	if a.From != "" && a.From == a.ID {
		r.add(a.At("from"), join(path, "from"), "an asset cannot be made from itself", "name another asset")
	}

	switch kind {
	case KindTexture:
		t := b.sub("texture")
		opts := &TextureOptions{
			NormalStrength: t.float("normal_strength"),
			NormalY:        t.str("normal_y"),
			Roughness:      t.pair("roughness"),
			Tile:           Tile(t.str("tile")),
		}
		maps := t.strs("maps")
		for _, name := range TextureMaps() {
			if contains(maps, name) {
				opts.Maps = append(opts.Maps, name)
			}
		}
		switch x := t.get("metallic").(type) {
		case metallic:
			opts.Metallic, opts.MetallicMap = x.v, x.isMap
		case float64:
			opts.Metallic = x
		}
		a.Texture = opts
	case KindTileable:
		a.Tileable = &TileableOptions{Tile: Tile(b.sub("tileable").str("tile")), RepairSeams: b.sub("tileable").bool("repair_seams")}
	case KindSpriteSheet:
		s := b.sub("sprite")
		opts := &SpriteOptions{
			FrameSize:    s.size("frame_size"),
			FPS:          s.float("fps"),
			Loop:         s.bool("loop"),
			Consistency:  s.float("consistency"),
			Background:   s.str("background"),
			KeyThreshold: s.float("key_threshold"),
			KeySoftness:  s.float("key_softness"),
			Columns:      s.int("columns"),
		}
		switch c := s.get("key_color").(type) {
		case color.RGBA:
			opts.KeyColor = c
		case string:
			n := hexByte(c[1:3])<<16 | hexByte(c[3:5])<<8 | hexByte(c[5:7])
			opts.KeyColor = color.RGBA{R: uint8(n >> 16), G: uint8(n >> 8), B: uint8(n), A: 255}
		}
		if fr, ok := s.get("frames").(frames); ok {
			opts.Frames, opts.FramePrompts = fr.n, fr.prompts
		} else if !s.o.has("frames") {
			r.add(o.pos, join(path, "sprite.frames"), `missing required field "frames"`, "add sprite: {frames: 8}, or a list of per-frame prompts")
		}
		if s.o != nil && s.o.has("pixel_art") {
			p := s.sub("pixel_art")
			opts.PixelArt = &PixelArt{Factor: p.int("factor"), Colors: p.int("colors"), Palette: p.str("palette")}
		}
		if opts.Columns > 0 && opts.Frames > 0 && opts.Columns > opts.Frames {
			r.add(a.At("sprite.columns"), join(path, "sprite.columns"), fmt.Sprintf("%d columns for %d frames", opts.Columns, opts.Frames), "use at most as many columns as frames")
		}
		a.Sprite = opts
	case KindConceptArt:
		c := b.sub("concept")
		opts := &ConceptOptions{Variations: c.int("variations")}
		if c.o != nil && c.o.has("hires") {
			h := c.sub("hires")
			opts.Hires = &Hires{Scale: h.float("scale"), Strength: h.float("strength"), Steps: h.int("steps")}
			if !a.Size.IsZero() {
				w, hh := int(float64(a.Size.W)*opts.Hires.Scale), int(float64(a.Size.H)*opts.Hires.Scale)
				if lim := r.cfg.Limits.MaxImageSize; w > lim || hh > lim {
					r.add(a.At("concept.hires.scale"), join(path, "concept.hires.scale"),
						fmt.Sprintf("hires output %dx%d is larger than limits.max_image_size (%d)", w, hh, lim), "lower the scale or the size, or raise limits.max_image_size in kiln.yaml")
				}
			}
		}
		a.Concept = opts
	}
	if mo := o.sub("material"); kind == KindTexture && (mo != nil || o.has("material")) {
		if mo == nil {
			mo = newObject(o.keyAt("material"))
		}
		a.Material = r.material(f, join(path, "material"), mo, a)
	}
	return a
}

func hexByte(s string) int {
	n := 0
	for _, c := range s {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= int(c - '0')
		case c >= 'a' && c <= 'f':
			n |= int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			n |= int(c-'A') + 10
		}
	}
	return n
}

// material resolves an entry of materials:, or the material: block of the
// texture asset owner (then o has no id and the slots default to the
// owner's maps).
func (r *resolver) material(f *fileDecl, path string, o *object, owner *Asset) *Material {
	var cfgDef, fileDef *object
	if d := defaultsObj(r.cfg.Defaults); d != nil {
		cfgDef = d.sub("material")
	}
	if d := defaultsObj(f.defaults); d != nil {
		fileDef = d.sub("material")
	}
	m := merge(cfgDef, fileDef, o)
	m.pos = o.pos
	b := binder{o: m, s: r.specs.material}
	mat := &Material{File: f.name, Pos: o.pos, Where: map[string]Pos{}}
	recordWhere(m, "", mat.Where)
	if owner != nil {
		mat.ID, mat.Owner = owner.ID, owner.ID
	} else if v, ok := o.get("id"); ok {
		mat.ID = v.v.(string)
	} else {
		return nil
	}
	// Each slot: its reference, the field that set it, and the map a
	// texture asset gives when the reference names no map.
	slot := func(name, def string) *TexRef {
		ref := b.texRef(name)
		if ref != nil {
			r.refs = append(r.refs, refUse{ref: ref, field: join(path, name), def: def})
		}
		return ref
	}
	mat.BaseColor = slot("base_color", MapAlbedo)
	mat.MetallicRoughness = slot("metallic_roughness", MapORM)
	mat.Normal = slot("normal", MapNormal)
	mat.Occlusion = slot("occlusion", "")
	mat.Emissive = slot("emissive", MapAlbedo)
	if orm := b.texRef("orm"); orm != nil {
		oc := *orm
		mat.MetallicRoughness, mat.Occlusion = orm, &oc
		r.refs = append(r.refs, refUse{ref: orm, also: &oc, field: join(path, "orm"), def: MapORM})
	}
	if owner != nil {
		// The texture's own maps fill the slots the block leaves empty.
		own := func(mp string) *TexRef { return &TexRef{Asset: owner.ID, Map: mp, Pos: o.pos} }
		t := owner.Texture
		if mat.BaseColor == nil {
			mat.BaseColor = own(MapAlbedo)
		}
		if mat.MetallicRoughness == nil && t.HasMap(MapORM) {
			mat.MetallicRoughness = own(MapORM)
		}
		if mat.Normal == nil && t.HasMap(MapNormal) {
			mat.Normal = own(MapNormal)
		}
		if mat.Occlusion == nil {
			if t.HasMap(MapORM) {
				mat.Occlusion = own(MapORM)
			} else if t.HasMap(MapAO) {
				mat.Occlusion = own(MapAO)
			}
		}
	}
	bcf := b.floats("base_color_factor")
	copy(mat.BaseColorFactor[:], bcf)
	if b.has("metallic_factor") {
		mat.MetallicFactor = b.float("metallic_factor")
	} else if mat.MetallicRoughness != nil {
		mat.MetallicFactor = 1
	}
	mat.RoughnessFactor = b.float("roughness_factor")
	mat.NormalScale = b.float("normal_scale")
	mat.OcclusionStrength = b.float("occlusion_strength")
	if b.has("emissive_factor") {
		copy(mat.EmissiveFactor[:], b.floats("emissive_factor"))
	} else if mat.Emissive != nil {
		mat.EmissiveFactor = [3]float64{1, 1, 1}
	}
	mat.EmissiveStrength = b.float("emissive_strength")
	mat.AlphaMode = b.str("alpha_mode")
	mat.AlphaCutoff = b.float("alpha_cutoff")
	mat.DoubleSided = b.bool("double_sided")
	mat.Repeat = b.pair("repeat")
	mat.Formats = b.strs("formats")
	mat.Preview = b.str("preview")
	if o.has("alpha_cutoff") && mat.AlphaMode != "MASK" {
		r.add(o.keyAt("alpha_cutoff"), join(path, "alpha_cutoff"), fmt.Sprintf("alpha_cutoff applies only to alpha_mode MASK, not %s", mat.AlphaMode), "set alpha_mode: MASK, or remove alpha_cutoff")
	}
	r.entries[mat] = path
	return mat
}

// atlas resolves an entry of atlases:.
func (r *resolver) atlas(f *fileDecl, path string, o *object) *Atlas {
	idv, ok := o.get("id")
	if !ok {
		return nil
	}
	var cfgDef, fileDef *object
	if d := defaultsObj(r.cfg.Defaults); d != nil {
		cfgDef = d.sub("atlas")
	}
	if d := defaultsObj(f.defaults); d != nil {
		fileDef = d.sub("atlas")
	}
	m := merge(cfgDef, fileDef, o)
	m.pos = o.pos
	b := binder{o: m, s: r.specs.atlas}
	at := &Atlas{ID: idv.v.(string), File: f.name, Pos: o.pos, Where: map[string]Pos{}}
	recordWhere(m, "", at.Where)
	at.Include = b.strs("include")
	at.MaxSize = b.int("max_size")
	at.Size = b.str("size")
	at.Square = b.bool("square")
	at.Padding = b.int("padding")
	at.Border = b.int("border")
	at.Extrude = b.int("extrude")
	if t, ok := b.get("trim").(trim); ok {
		at.Trim, at.TrimAlpha = t.on, t.alpha
	}
	at.Rotation = b.bool("rotation")
	at.Dedupe = b.bool("dedupe")
	at.PremultiplyAlpha = b.bool("premultiply_alpha")
	at.Formats = b.strs("formats")
	at.Heuristic = b.str("heuristic")
	at.Scales = b.floats("scales")
	at.Sprites = atlasSprites(b.get("sprites"))
	r.entries[at] = path
	r.atlasObj[at] = o
	return at
}

// atlasSprites reads an atlas's decoded sprites: map.
func atlasSprites(v any) map[string]AtlasSprite {
	o, ok := v.(*object)
	if !ok || len(o.ents) == 0 {
		return nil
	}
	out := map[string]AtlasSprite{}
	for _, e := range o.ents {
		if e.v == nil {
			continue
		}
		so, ok := e.v.v.(*object)
		if !ok {
			continue
		}
		var sp AtlasSprite
		if f := floatList(so, "pivot"); len(f) == 2 {
			sp.Pivot = &[2]float64{f[0], f[1]}
		}
		if v, ok := so.get("slice"); ok {
			if l, ok := v.v.([]*value); ok && len(l) == 4 {
				var s [4]int
				for i, x := range l {
					n, _ := x.v.(int64)
					s[i] = int(n)
				}
				sp.Slice = &s
			}
		}
		out[e.name] = sp
	}
	return out
}

// floatList reads a decoded list of numbers.
func floatList(o *object, name string) []float64 {
	v, ok := o.get(name)
	if !ok {
		return nil
	}
	l, _ := v.v.([]*value)
	out := make([]float64, 0, len(l))
	for _, x := range l {
		if f, ok := x.v.(float64); ok {
			out = append(out, f)
		}
	}
	return out
}

// crossCheck runs the checks that need every file: duplicate ids and
// references between entries.
func (r *resolver) crossCheck() {
	p := r.proj
	type idUse struct {
		id, what, path string
		pos            Pos
	}
	var uses []idUse
	for _, a := range p.Assets {
		uses = append(uses, idUse{a.ID, "asset", r.entries[a], a.At("id")})
	}
	for _, a := range p.Atlases {
		uses = append(uses, idUse{a.ID, "atlas", r.entries[a], a.At("id")})
	}
	for _, m := range p.Materials {
		if m.Owner == "" {
			uses = append(uses, idUse{m.ID, "material", r.entries[m], m.At("id")})
		}
	}
	sort.SliceStable(uses, func(i, j int) bool { return uses[i].pos.before(uses[j].pos) })
	first := make(map[string]idUse, len(uses))
	for _, u := range uses {
		if f, dup := first[u.id]; dup {
			hint := ""
			if f.what != u.what {
				hint = fmt.Sprintf("that is %s; assets, atlases and materials share one set of ids", article(f.what))
			}
			r.add(u.pos, join(u.path, "id"), fmt.Sprintf("duplicate id %q: also defined at %s", u.id, f.pos), hint)
			continue
		}
		first[u.id] = u
	}

	p.assets = make(map[string]*Asset, len(p.Assets))
	p.atlases = map[string]*Atlas{}
	p.materials = map[string]*Material{}
	var ids []string
	for _, a := range p.Assets {
		if _, ok := p.assets[a.ID]; !ok {
			p.assets[a.ID] = a
			ids = append(ids, a.ID)
		}
	}
	for _, a := range p.Atlases {
		if _, ok := p.atlases[a.ID]; !ok {
			p.atlases[a.ID] = a
		}
	}
	for _, m := range p.Materials {
		if _, ok := p.materials[m.ID]; !ok {
			p.materials[m.ID] = m
		}
	}
	sortedIDs := append([]string(nil), ids...)
	sort.Strings(sortedIDs)

	unknown := func(pos Pos, field, id string) {
		if r.maybeInBroken(id) {
			return
		}
		r.add(pos, field, fmt.Sprintf("unknown asset %q", id), didYouMean(id, ids))
	}

	for _, a := range p.Assets {
		path := r.entries[a]
		if a.From == "" || a.From == a.ID {
			continue
		}
		src := p.assets[a.From]
		if src == nil {
			unknown(a.At("from"), join(path, "from"), a.From)
			continue
		}
		if !a.Has("pick") {
			continue
		}
		switch {
		case src.Kind == KindConceptArt:
			if a.Pick >= src.Concept.Variations {
				r.add(a.At("pick"), join(path, "pick"), fmt.Sprintf("pick %d, but %q has %d variations (0 to %d)", a.Pick, src.ID, src.Concept.Variations, src.Concept.Variations-1), "")
			}
		case src.Kind == KindSpriteSheet:
			if src.Sprite.Frames > 0 && a.Pick >= src.Sprite.Frames {
				r.add(a.At("pick"), join(path, "pick"), fmt.Sprintf("pick %d, but %q has %d frames (0 to %d)", a.Pick, src.ID, src.Sprite.Frames, src.Sprite.Frames-1), "")
			}
		case a.Pick != 0:
			r.add(a.At("pick"), join(path, "pick"), fmt.Sprintf("pick chooses a concept-art variation or a sprite-sheet frame, but %q is kind %s", src.ID, src.Kind), "remove pick")
		}
	}

	for _, at := range p.Atlases {
		path := r.entries[at]
		seen := map[string]bool{}
		for i, inc := range at.Include {
			field := index(join(path, "include"), i)
			pos := at.Pos
			if v, ok := r.includePos(at, i); ok {
				pos = v
			}
			if globMeta(inc) {
				n := 0
				// Only ids sharing the glob's literal prefix can match;
				// they form one run of the sorted list.
				prefix := inc[:strings.IndexAny(inc, "*?[")]
				start := sort.SearchStrings(sortedIDs, prefix)
				for _, id := range sortedIDs[start:] {
					if !strings.HasPrefix(id, prefix) {
						break
					}
					if matchGlob(inc, id) {
						n++
						if !seen[id] {
							seen[id] = true
							at.Assets = append(at.Assets, id)
						}
					}
				}
				if n == 0 && !r.maybeInBroken(prefix) {
					r.add(pos, field, fmt.Sprintf("pattern %q matches no asset", inc), `"*" matches within one id segment, "**" across segments`)
				}
				continue
			}
			if p.assets[inc] == nil {
				unknown(pos, field, inc)
				continue
			}
			if !seen[inc] {
				seen[inc] = true
				at.Assets = append(at.Assets, inc)
			}
		}
	}

	for _, u := range r.refs {
		ref := u.ref
		src := p.assets[ref.Asset]
		if src == nil {
			unknown(ref.Pos, u.field, ref.Asset)
			continue
		}
		switch src.Kind {
		case KindSpriteSheet:
			r.add(ref.Pos, u.field, fmt.Sprintf("materials take image, texture, tileable or concept-art assets; %q is kind sprite-sheet", src.ID), "")
		case KindTexture:
			if ref.Map == "" {
				ref.Map = u.def
				if u.def == "" { // occlusion: the packed map if there is one
					ref.Map = MapORM
					if !src.Texture.HasMap(MapORM) && src.Texture.HasMap(MapAO) {
						ref.Map = MapAO
					}
				}
			}
			if ref.Map != MapAlbedo && !src.Texture.HasMap(ref.Map) {
				r.add(ref.Pos, u.field, fmt.Sprintf("texture %q does not write map %q (its maps: %s)", src.ID, ref.Map, joinNames(src.Texture.Maps)),
					fmt.Sprintf("add %s to texture.maps of %q", ref.Map, src.ID))
			}
		default:
			if ref.Map != "" {
				r.add(ref.Pos, u.field, fmt.Sprintf("map %q needs a texture asset, but %q is kind %s", ref.Map, src.ID, src.Kind), "remove map:")
			}
		}
		if u.also != nil {
			u.also.Map = ref.Map
		}
	}
}

func (r *resolver) includePos(at *Atlas, i int) (Pos, bool) {
	o := r.atlasObj[at]
	if o == nil {
		return Pos{}, false
	}
	v, ok := o.get("include")
	if !ok {
		return Pos{}, false
	}
	items, ok := v.v.([]*value)
	if !ok || i >= len(items) {
		return Pos{}, false
	}
	return items[i].pos, true
}

func article(what string) string {
	if strings.IndexAny(what[:1], "aeiou") == 0 {
		return "an " + what
	}
	return "a " + what
}

// applyConfig finishes Config from its decoded object.
func bindConfig(sp *specs, o *object) *Config {
	b := binder{o: o, s: sp.config}
	c := &Config{Version: 1, Models: map[string]*Model{}, Where: map[string]Pos{}}
	recordWhere(o, "", c.Where)
	c.Output = b.str("output")
	c.Cache = b.str("cache")
	switch x := b.get("manifests").(type) {
	case string:
		c.Manifests = []string{x}
	case []*value:
		for _, v := range x {
			c.Manifests = append(c.Manifests, v.v.(string))
		}
	case []string:
		c.Manifests = append(c.Manifests, x...)
	}
	if mo := o.sub("models"); mo != nil {
		for _, e := range mo.ents {
			if e.v == nil {
				continue
			}
			m := *(e.v.v.(*Model))
			m.Name = e.name
			if m.HF != nil && m.Path == "" {
				// kiln models pull fills models/NAME by default.
				m.Path = "models/" + e.name
			}
			c.Models[e.name] = &m
		}
	}
	rt := b.sub("runtime")
	c.Runtime = Runtime{
		Library:  rt.str("library"),
		Device:   rt.str("device"),
		DeviceID: rt.int("device_id"),
		Threads:  rt.int("threads"),
	}
	if rt.str("fallback") == "cpu" {
		c.Runtime.Fallback = "cpu"
	}
	if mb, ok := rt.get("memory_budget").(int64); ok {
		c.Runtime.MemoryBudget = mb
	}
	if rt.has("spinning") {
		spin := rt.bool("spinning")
		c.Runtime.Spinning = &spin
	}
	if rt.has("batch") {
		c.Runtime.Batch = rt.int("batch")
	}
	po := rt.sub("provider_options")
	for _, provider := range []string{"cuda", "tensorrt"} {
		o := po.o.sub(provider)
		if o == nil {
			continue
		}
		opts := map[string]string{}
		for _, e := range o.ents {
			if e.v == nil {
				continue // a bad value, already reported
			}
			if v, ok := e.v.v.(string); ok {
				opts[e.name] = v
			}
		}
		if c.Runtime.ProviderOptions == nil {
			c.Runtime.ProviderOptions = map[string]map[string]string{}
		}
		c.Runtime.ProviderOptions[provider] = opts
	}
	l := b.sub("limits")
	c.Limits = Limits{
		MaxImageSize:   l.int("max_image_size"),
		MaxSteps:       l.int("max_steps"),
		MaxFrames:      l.int("max_frames"),
		MaxVariations:  l.int("max_variations"),
		MaxPromptChars: l.int("max_prompt_chars"),
	}
	switch x := l.get("max_manifest_bytes").(type) {
	case int64:
		c.Limits.MaxManifestBytes = x
	case string:
		c.Limits.MaxManifestBytes, _ = parseByteSize(x)
	}
	c.Godot.ProjectRoot = b.sub("godot").str("project_root")
	switch x := b.sub("watch").get("debounce").(type) {
	case time.Duration:
		c.Watch.Debounce = x
	case string:
		c.Watch.Debounce, _ = time.ParseDuration(x)
	}
	c.RemoteCache, _ = b.get("remote_cache").(*RemoteCache)
	return c
}
