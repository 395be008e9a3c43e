package preview

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// fixture writes a small but real output folder, as a kiln build would
// leave it, and returns the state describing it: a tileable texture, a
// PBR texture set, a pixel-art sprite sheet, concept-art variations, an
// atlas, and a glTF material (a UV sphere with base colour, normal and
// ORM maps).
func fixture(t testing.TB, out string) State {
	t.Helper()
	put := func(rel string, data []byte) {
		p := filepath.Join(out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	putPNG := func(rel string, img image.Image) {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		put(rel, b.Bytes())
	}

	// Bricks: albedo, height-derived normal map, ORM.
	const bs = 128
	height := func(x, y int) float64 {
		row := y / 16
		off := 0
		if row%2 == 1 {
			off = 16
		}
		bx, by := (x+off)%32, y%16
		edge := math.Min(math.Min(float64(bx), float64(31-bx)), math.Min(float64(by), float64(15-by)))
		h := math.Min(edge/2.5, 1)
		return h * (0.85 + 0.15*math.Sin(float64(x*7+y*13)))
	}
	albedo := image.NewNRGBA(image.Rect(0, 0, bs, bs))
	normal := image.NewNRGBA(image.Rect(0, 0, bs, bs))
	orm := image.NewNRGBA(image.Rect(0, 0, bs, bs))
	for y := range bs {
		for x := range bs {
			h := height(x, y)
			shade := 0.75 + 0.25*math.Sin(float64((x/32)*5+(y/16)*3))
			mortar := h < 0.4
			c := color.NRGBA{uint8(150 * shade), uint8(72 * shade), uint8(52 * shade), 255}
			if mortar {
				c = color.NRGBA{120, 116, 108, 255}
			}
			albedo.SetNRGBA(x, y, c)
			dx := height((x+1)%bs, y) - height((x+bs-1)%bs, y)
			dy := height(x, (y+1)%bs) - height(x, (y+bs-1)%bs)
			n := [3]float64{-dx * 2, dy * 2, 1}
			l := math.Sqrt(n[0]*n[0] + n[1]*n[1] + n[2]*n[2])
			normal.SetNRGBA(x, y, color.NRGBA{uint8((n[0]/l*0.5 + 0.5) * 255), uint8((n[1]/l*0.5 + 0.5) * 255), uint8((n[2]/l*0.5 + 0.5) * 255), 255})
			rough := uint8(170)
			if mortar {
				rough = 245
			}
			orm.SetNRGBA(x, y, color.NRGBA{uint8(160 + 95*h), rough, 0, 255})
		}
	}
	putPNG("dungeon/wall.png", albedo)
	putPNG("dungeon/wall_normal.png", normal)
	putPNG("dungeon/wall_orm.png", orm)

	// A seamless stone floor: sums of sines with whole periods.
	floor := image.NewNRGBA(image.Rect(0, 0, 96, 96))
	for y := range 96 {
		for x := range 96 {
			fx, fy := 2*math.Pi*float64(x)/96, 2*math.Pi*float64(y)/96
			v := 0.5 + 0.2*math.Sin(3*fx)*math.Cos(2*fy) + 0.15*math.Sin(5*fy+fx) + 0.1*math.Cos(7*fx-3*fy)
			floor.SetNRGBA(x, y, color.NRGBA{uint8(70 + 90*v), uint8(80 + 80*v), uint8(70 + 70*v), 255})
		}
	}
	putPNG("dungeon/floor.png", floor)

	// A 4-frame pixel-art sprite sheet on a 2×2 grid: a bouncing slime.
	sheet := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for f := range 4 {
		ox, oy := (f%2)*16, (f/2)*16
		squash := []float64{0, 1, 2, 1}[f]
		for y := range 16 {
			for x := range 16 {
				cx, cy := float64(x)-7.5, float64(y)-(10+squash/2)
				rx, ry := 6+squash, 5-squash
				if cx*cx/(rx*rx)+cy*cy/(ry*ry) <= 1 {
					c := color.NRGBA{90, 200, 110, 255}
					if cy < -ry/2 && cx < 0 {
						c = color.NRGBA{170, 240, 170, 255}
					}
					if (x == 5 || x == 10) && y == int(9+squash/2) {
						c = color.NRGBA{20, 30, 20, 255}
					}
					sheet.SetNRGBA(ox+x, oy+y, c)
				}
			}
		}
	}
	putPNG("characters/slime.png", sheet)
	put("characters/slime.json", []byte(`{"frames":4,"fps":6}`))

	// Concept art: two variations.
	for v := range 2 {
		img := image.NewNRGBA(image.Rect(0, 0, 160, 90))
		for y := range 90 {
			for x := range 160 {
				sky := color.NRGBA{uint8(40 + y), uint8(60 + y), uint8(110 + y/2 + v*30), 255}
				if y > 60-int(10*math.Sin(float64(x)/(13+float64(v)*4))) {
					sky = color.NRGBA{30, uint8(50 + v*20), 40, 255}
				}
				img.SetNRGBA(x, y, sky)
			}
		}
		putPNG("concepts/castle_"+string(rune('0'+v))+".png", img)
	}

	// An atlas page with the three images packed.
	page := image.NewNRGBA(image.Rect(0, 0, 256, 128))
	for y := range 96 {
		for x := range 96 {
			page.Set(x, y, floor.At(x, y))
		}
	}
	for y := range 32 {
		for x := range 32 {
			page.Set(100+x, y, sheet.At(x, y))
		}
	}
	for y := range 128 {
		for x := range 118 {
			page.Set(136+x, y, albedo.At(x, y))
		}
	}
	putPNG("atlases/dungeon.png", page)
	put("atlases/dungeon.json", []byte(`{"frames":{}}`))

	// The material: a UV sphere in a .gltf with an external .bin.
	gltf, bin := sphereGLTF(t, "wall.bin", "../dungeon/wall.png", "../dungeon/wall_normal.png", "../dungeon/wall_orm.png")
	put("materials/wall.gltf", gltf)
	put("materials/wall.bin", bin)

	return State{
		Project: "dungeon-crawler",
		OK:      true,
		Summary: "7 built, 5 cached, 0 failed in 1.2s",
		Changed: []string{"assets/dungeon.kiln.yaml"},
		Assets: []Asset{
			{ID: "dungeon/floor", Kind: "tileable", Status: StatusBuilt, Where: "assets/dungeon.kiln.yaml:4:5", Tile: "xy",
				Prompt: "mossy flagstone floor, top-down, seamless", Images: []File{{Path: "dungeon/floor.png", Label: "image"}},
				Stages: []Stage{{ID: "dungeon/floor:generate", Kind: "tileable.generate", Status: StatusBuilt, DurationMS: 820}}},
			{ID: "dungeon/wall", Kind: "texture", Status: StatusCached, Where: "assets/dungeon.kiln.yaml:12:5", Tile: "xy",
				Prompt: "red brick wall, weathered",
				Images: []File{{Path: "dungeon/wall.png", Label: "albedo"}, {Path: "dungeon/wall_normal.png", Label: "normal"}, {Path: "dungeon/wall_orm.png", Label: "orm"}},
				Stages: []Stage{{ID: "dungeon/wall:generate", Kind: "texture.generate", Status: StatusCached, DurationMS: 0.4}, {ID: "dungeon/wall:maps", Kind: "pbr.derive", Status: StatusCached, DurationMS: 0.3}}},
			{ID: "characters/slime", Kind: "sprite-sheet", Status: StatusBuilt, Where: "assets/characters.kiln.yaml:3:5",
				Prompt: "green slime, bouncing, pixel art",
				Images: []File{{Path: "characters/slime.png", Label: "sheet"}},
				Files:  []File{{Path: "characters/slime.json", Label: "slime.json"}},
				Sprite: &Sprite{FPS: 6, Frames: 4, Loop: true, Columns: 2, Rows: 2, Sheet: &File{Path: "characters/slime.png"}, PixelArt: true},
				Stages: []Stage{{ID: "characters/slime:frames", Kind: "sprite.frames", Status: StatusBuilt, DurationMS: 2400}}},
			{ID: "concepts/castle", Kind: "concept-art", Status: StatusFailed, Where: "assets/concepts.kiln.yaml:2:5",
				Prompt: "a castle on a hill at dusk",
				Images: []File{{Path: "concepts/castle_0.png", Label: "variation 0"}, {Path: "concepts/castle_1.png", Label: "variation 1"}},
				Stages: []Stage{{ID: "concepts/castle:hires", Kind: "concept.hires", Status: StatusFailed, DurationMS: 12,
					Error: "assets/concepts.kiln.yaml:6:11: hires.scale: 4 makes 4096x2304, larger than limits.max_image_size 2048 (lower the scale or raise the limit in kiln.yaml)"}}},
		},
		Atlases: []Atlas{{ID: "dungeon", Status: StatusBuilt, Where: "assets/dungeon.kiln.yaml:30:5",
			Assets: []string{"dungeon/floor", "characters/slime", "dungeon/wall"},
			Pages:  []File{{Path: "atlases/dungeon.png", Label: "page 1"}}, Files: []File{{Path: "atlases/dungeon.json", Label: "dungeon.json"}},
			Stages: []Stage{{ID: "atlas/dungeon:pack", Kind: "atlas.pack", Status: StatusBuilt, DurationMS: 31}}}},
		Materials: []Material{{ID: "dungeon/wall", Status: StatusCached, Where: "assets/dungeon.kiln.yaml:18:7", Preview: "sphere",
			GLTF:     &File{Path: "materials/wall.gltf"},
			Textures: []File{{Path: "dungeon/wall.png", Label: "base"}, {Path: "dungeon/wall_normal.png", Label: "normal"}, {Path: "dungeon/wall_orm.png", Label: "orm"}},
			Stages:   []Stage{{ID: "dungeon/wall:gltf", Kind: "gltf.export", Status: StatusCached, DurationMS: 0.2}}}},
	}
}

// sphereGLTF builds a glTF 2.0 document with a UV sphere (positions,
// normals, UVs, tangents, 16-bit indices) and a metallic-roughness
// material using the given images.
func sphereGLTF(t testing.TB, binName, base, normal, orm string) ([]byte, []byte) {
	t.Helper()
	const seg, rings = 32, 20
	var pos, nrm, tan []float32
	var uv []float32
	var idx []uint16
	for r := 0; r <= rings; r++ {
		v := float64(r) / rings
		phi := v * math.Pi
		for s := 0; s <= seg; s++ {
			u := float64(s) / seg
			th := u * 2 * math.Pi
			x, y, z := math.Sin(phi)*math.Sin(th), math.Cos(phi), math.Sin(phi)*math.Cos(th)
			pos = append(pos, float32(x), float32(y), float32(z))
			nrm = append(nrm, float32(x), float32(y), float32(z))
			uv = append(uv, float32(u*2), float32(v))
			tan = append(tan, float32(math.Cos(th)), 0, float32(-math.Sin(th)), 1)
		}
	}
	for r := range rings {
		for s := range seg {
			a := uint16(r*(seg+1) + s)
			b := a + seg + 1
			idx = append(idx, a, b, a+1, a+1, b, b+1)
		}
	}
	var bin bytes.Buffer
	views := []map[string]any{}
	add := func(data any, target int) int {
		off := bin.Len()
		binary.Write(&bin, binary.LittleEndian, data)
		n := bin.Len() - off
		for bin.Len()%4 != 0 {
			bin.WriteByte(0)
		}
		views = append(views, map[string]any{"buffer": 0, "byteOffset": off, "byteLength": n, "target": target})
		return len(views) - 1
	}
	nv := len(pos) / 3
	doc := map[string]any{
		"asset":  map[string]any{"version": "2.0", "generator": "kiln preview test"},
		"scene":  0,
		"scenes": []any{map[string]any{"nodes": []int{0}}},
		"nodes":  []any{map[string]any{"mesh": 0, "name": "preview"}},
		"meshes": []any{map[string]any{"primitives": []any{map[string]any{
			"attributes": map[string]int{"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2, "TANGENT": 3},
			"indices":    4, "material": 0}}}},
		"materials": []any{map[string]any{
			"name":                 "wall",
			"pbrMetallicRoughness": map[string]any{"baseColorTexture": map[string]int{"index": 0}, "metallicRoughnessTexture": map[string]int{"index": 2}, "metallicFactor": 0, "roughnessFactor": 1},
			"normalTexture":        map[string]any{"index": 1, "scale": 1},
			"occlusionTexture":     map[string]any{"index": 2},
		}},
		"textures": []any{map[string]int{"source": 0, "sampler": 0}, map[string]int{"source": 1, "sampler": 0}, map[string]int{"source": 2, "sampler": 0}},
		"samplers": []any{map[string]int{"magFilter": 9729, "minFilter": 9987, "wrapS": 10497, "wrapT": 10497}},
		"images":   []any{map[string]string{"uri": base}, map[string]string{"uri": normal}, map[string]string{"uri": orm}},
	}
	vPos := add(pos, 34962)
	vNrm := add(nrm, 34962)
	vUV := add(uv, 34962)
	vTan := add(tan, 34962)
	vIdx := add(idx, 34963)
	doc["accessors"] = []any{
		map[string]any{"bufferView": vPos, "componentType": 5126, "count": nv, "type": "VEC3", "min": []float32{-1, -1, -1}, "max": []float32{1, 1, 1}},
		map[string]any{"bufferView": vNrm, "componentType": 5126, "count": nv, "type": "VEC3"},
		map[string]any{"bufferView": vUV, "componentType": 5126, "count": nv, "type": "VEC2"},
		map[string]any{"bufferView": vTan, "componentType": 5126, "count": nv, "type": "VEC4"},
		map[string]any{"bufferView": vIdx, "componentType": 5123, "count": len(idx), "type": "SCALAR"},
	}
	doc["bufferViews"] = views
	doc["buffers"] = []any{map[string]any{"uri": binName, "byteLength": bin.Len()}}
	js, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return js, bin.Bytes()
}
