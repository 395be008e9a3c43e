package manifests

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// m wraps asset lines into a version 1 manifest.
func m(body string) string { return "version: 1\n" + body }

// billionLaughs is the classic alias bomb: nine levels of nine aliases,
// 9^9 strings once expanded.
var billionLaughs = func() string {
	var b strings.Builder
	b.WriteString("x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for c := 'b'; c <= 'i'; c++ {
		fmt.Fprintf(&b, "x-%c: &%c [", c, c)
		for i := 0; i < 9; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*%c", c-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("assets:\n  - {id: a, kind: tileable, prompt: s, tags: *i}\n")
	return b.String()
}()

// mergeBomb nests merge keys instead of lists.
var mergeBomb = func() string {
	var b strings.Builder
	b.WriteString("x-a: &a {kind: tileable}\n")
	for c := 'b'; c <= 'j'; c++ {
		fmt.Fprintf(&b, "x-%c: &%c {<<: [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]}\n", c, c, c-1, c-1, c-1, c-1, c-1, c-1, c-1, c-1)
	}
	b.WriteString("assets:\n  - {<<: *j, id: a, prompt: s}\n")
	return b.String()
}()

type errCase struct {
	name  string
	files map[string]string
	want  []string
}

func errCases() []errCase {
	one := func(body string) map[string]string { return map[string]string{"a.kiln.yaml": m(body)} }
	return []errCase{
		{"unknown field suggests", one("assets:\n  - id: a\n    kind: tileable\n    promt: stone\n"), []string{
			"a.kiln.yaml:3:5: assets[0]: missing required field \"prompt\" (describe the picture, e.g. prompt: \"mossy stone floor\")",
			"a.kiln.yaml:5:5: assets[0].promt: unknown field \"promt\" (did you mean \"prompt\"?)",
		}},
		{"unknown field camelCase", one("assets:\n  - id: a\n    kind: tileable\n    prompt: stone\n    negativePrompt: x\n"), []string{
			"a.kiln.yaml:6:5: assets[0].negativePrompt: unknown field \"negativePrompt\" (did you mean \"negative_prompt\"?)",
		}},
		{"unknown field lists fields", one("assets:\n  - id: a\n    kind: image\n    image: {source: a.png}\n    zzz: 1\n"), []string{
			"a.kiln.yaml:6:5: assets[0].zzz: unknown field \"zzz\" (expected one of: id, kind, prompt, negative_prompt, model, seed, steps, guidance, scheduler, size, strength, from, pick, exemplars, tags, loras, image, texture, tileable, sprite, concept, material, inpaint)",
		}},
		{"unknown kind block alias", one("assets:\n  - id: a\n    kind: sprite-sheet\n    prompt: fire\n    sprite_sheet: {frames: 2}\n"), []string{
			"a.kiln.yaml:3:5: assets[0].sprite.frames: missing required field \"frames\" (add sprite: {frames: 8}, or a list of per-frame prompts)",
			"a.kiln.yaml:6:5: assets[0].sprite_sheet: unknown field \"sprite_sheet\" (did you mean \"sprite\"?)",
		}},
		{"unknown top-level field", one("asets: []\n"), []string{
			"a.kiln.yaml:2:1: asets: unknown field \"asets\" (did you mean \"assets\"?)",
		}},
		{"wrong type int", one("assets:\n  - id: a\n    kind: tileable\n    prompt: stone\n    steps: ten\n"), []string{
			"a.kiln.yaml:6:12: assets[0].steps: expected an integer, got \"ten\"",
		}},
		{"wrong type bool", one("assets:\n  - id: a\n    kind: sprite-sheet\n    prompt: fire\n    sprite: {frames: 2, loop: yes}\n"), []string{
			"a.kiln.yaml:6:31: assets[0].sprite.loop: expected true or false, got \"yes\"",
		}},
		{"wrong type list", one("assets:\n  - id: a\n    kind: image\n    image: {source: a.png}\n    tags: hero\n"), []string{
			"a.kiln.yaml:6:11: assets[0].tags: expected a list, got \"hero\" (write a list: [hero])",
		}},
		{"wrong type string", one("assets:\n  - id: 12\n    kind: image\n    image: {source: a.png}\n"), []string{
			"a.kiln.yaml:3:9: assets[0].id: expected a string, got 12 (quote it: \"12\")",
		}},
		{"wrong type mapping", one("assets:\n  id: a\n"), []string{
			"a.kiln.yaml:3:3: assets: expected a list, got a mapping",
		}},
		{"bad enum", one("assets:\n  - id: a\n    kind: tileable\n    prompt: stone\n    scheduler: eulr\n"), []string{
			"a.kiln.yaml:6:16: assets[0].scheduler: expected one of euler, euler_a, ddim, dpmpp_2m, lcm, heun, unipc, dpmpp_2m_sde, " +
				"or {name, karras, spacing, eta}, got \"eulr\" (did you mean \"euler\"?)",
		}},
		{"scheduler option for another sampler", one("assets:\n  - id: a\n    kind: tileable\n    prompt: stone\n    scheduler: {name: euler_a, karras: true, eta: 0.3}\n"), []string{
			"a.kiln.yaml:6:32: assets[0].scheduler.karras: karras does not apply to scheduler euler_a (remove karras, or use a scheduler that takes it (euler, heun, dpmpp_2m, dpmpp_2m_sde, unipc))",
			"a.kiln.yaml:6:46: assets[0].scheduler.eta: eta does not apply to scheduler euler_a (remove eta, or use a scheduler that takes it (ddim))",
		}},
		{"scheduler mapping without a name", one("assets:\n  - id: a\n    kind: tileable\n    prompt: stone\n    scheduler: {spacing: sideways}\n"), []string{
			"a.kiln.yaml:6:16: assets[0].scheduler: missing required field \"name\" (add name: one of euler, euler_a, ddim, dpmpp_2m, lcm, heun, unipc, dpmpp_2m_sde)",
			"a.kiln.yaml:6:26: assets[0].scheduler.spacing: expected one of leading, trailing, linspace, got \"sideways\"",
		}},
		{"bad kind", one("assets:\n  - id: a\n    kind: sprite\n"), []string{
			"a.kiln.yaml:4:11: assets[0].kind: expected one of image, texture, tileable, sprite-sheet, concept-art, got \"sprite\"",
		}},
		{"bad ids", one("assets:\n" +
			"  - {id: Dungeon/Floor, kind: image, image: {source: a.png}}\n" +
			"  - {id: ../up, kind: image, image: {source: a.png}}\n" +
			"  - {id: /abs, kind: image, image: {source: a.png}}\n" +
			"  - {id: 'a\\b', kind: image, image: {source: a.png}}\n" +
			"  - {id: 'C:/x', kind: image, image: {source: a.png}}\n" +
			"  - {id: a//b, kind: image, image: {source: a.png}}\n" +
			"  - {id: a/./b, kind: image, image: {source: a.png}}\n" +
			"  - {id: ui/con, kind: image, image: {source: a.png}}\n" +
			"  - {id: 'a b', kind: image, image: {source: a.png}}\n" +
			"  - {id: '', kind: image, image: {source: a.png}}\n"), []string{
			"a.kiln.yaml:3:10: assets[0].id: id \"Dungeon/Floor\" contains upper-case 'D' (ids are lower-case: did you mean \"dungeon/floor\"?)",
			"a.kiln.yaml:4:10: assets[1].id: id \"../up\" has a \"..\" segment (ids are lower-case names joined by \"/\", e.g. \"dungeon/floor\")",
			"a.kiln.yaml:5:10: assets[2].id: id \"/abs\" starts with \"/\" (ids are lower-case names joined by \"/\", e.g. \"dungeon/floor\")",
			"a.kiln.yaml:6:10: assets[3].id: id \"a\\\\b\" contains \"\\\" (use \"/\" to separate id segments)",
			"a.kiln.yaml:7:10: assets[4].id: id \"C:/x\" starts with a drive letter (ids are lower-case names joined by \"/\", e.g. \"dungeon/floor\")",
			"a.kiln.yaml:8:10: assets[5].id: id \"a//b\" has an empty segment (remove the extra \"/\")",
			"a.kiln.yaml:9:10: assets[6].id: id \"a/./b\" has a \".\" segment (ids are lower-case names joined by \"/\", e.g. \"dungeon/floor\")",
			"a.kiln.yaml:10:10: assets[7].id: id \"ui/con\" uses \"con\", a reserved file name on Windows (rename that segment)",
			"a.kiln.yaml:11:10: assets[8].id: id \"a b\" contains ' ' (use lower-case letters, digits, \"_\" and \"-\" in segments joined by \"/\": did you mean \"a-b\"?)",
			"a.kiln.yaml:12:10: assets[9].id: must not be empty (ids are lower-case names joined by \"/\", e.g. \"dungeon/floor\")",
		}},
		{"missing id and kind", one("assets:\n  - image: {source: a.png}\n"), []string{
			"a.kiln.yaml:3:5: assets[0]: missing required field \"id\" (ids are lower-case names joined by \"/\", e.g. \"dungeon/floor\")",
			"a.kiln.yaml:3:5: assets[0]: missing required field \"kind\" (add kind: image, texture, tileable, sprite-sheet or concept-art)",
		}},
		{"duplicate id across files", map[string]string{
			"a.kiln.yaml":     m("assets:\n  - id: a/b\n    kind: image\n    image: {source: a.png}\n"),
			"sub/b.kiln.yaml": m("atlases:\n  - id: x\n    include: [a/b]\n  - id: a/b\n    include: [a/b]\n"),
		}, []string{
			"sub/b.kiln.yaml:5:9: atlases[1].id: duplicate id \"a/b\": also defined at a.kiln.yaml:3:9 (that is an asset; assets, atlases and materials share one set of ids)",
		}},
		{"duplicate id same file", one("assets:\n  - {id: a, kind: image, image: {source: a.png}}\n  - {id: a, kind: image, image: {source: b.png}}\n"), []string{
			"a.kiln.yaml:4:10: assets[1].id: duplicate id \"a\": also defined at a.kiln.yaml:3:10",
		}},
		{"duplicate field", one("assets:\n  - id: a\n    kind: image\n    image: {source: a.png}\n    id: b\n"), []string{
			"a.kiln.yaml:6:5: assets[0].id: duplicate field \"id\": also set at a.kiln.yaml:3:5 (remove one of them)",
		}},
		{"size not multiple of 8", one("assets:\n  - {id: a, kind: tileable, prompt: s, size: 500}\n  - {id: b, kind: tileable, prompt: s, size: [512, 300]}\n"), []string{
			"a.kiln.yaml:3:46: assets[0].size: width 500 is not a multiple of 8 (diffusion models work in 8-pixel blocks; use 496 or 504)",
			"a.kiln.yaml:4:46: assets[1].size: height 300 is not a multiple of 8 (diffusion models work in 8-pixel blocks; use 296 or 304)",
		}},
		{"size too large", one("assets:\n  - {id: a, kind: tileable, prompt: s, size: 16384x512}\n"), []string{
			"a.kiln.yaml:3:46: assets[0].size: width 16384 is more than limits.max_image_size (8192) (lower it, or raise limits.max_image_size in kiln.yaml)",
		}},
		{"size malformed", one("assets:\n  - {id: a, kind: tileable, prompt: s, size: big}\n  - {id: b, kind: tileable, prompt: s, size: [1, 2, 3]}\n  - {id: c, kind: tileable, prompt: s, size: {w: 1}}\n"), []string{
			"a.kiln.yaml:3:46: assets[0].size: expected a size like 512, [512, 768] or \"512x768\", got \"big\"",
			"a.kiln.yaml:4:46: assets[1].size: needs 2 items, got 3",
			"a.kiln.yaml:5:46: assets[2].size: expected a size like 512, [512, 768] or \"512x768\", got a mapping",
		}},
		{"out of range", one("assets:\n" +
			"  - {id: a, kind: tileable, prompt: s, steps: 0, guidance: -1, seed: -1}\n" +
			"  - {id: b, kind: tileable, prompt: s, steps: 500, from: a, strength: 1.5}\n" +
			"  - {id: c, kind: sprite-sheet, prompt: s, sprite: {frames: 300, fps: 0, consistency: 2}}\n" +
			"  - {id: d, kind: sprite-sheet, prompt: s, sprite: {frames: 0}}\n" +
			"  - {id: e, kind: concept-art, prompt: s, concept: {variations: 100, hires: {scale: 1}}}\n" +
			"  - {id: f, kind: concept-art, prompt: s, concept: {variations: 0}}\n"), []string{
			"a.kiln.yaml:3:47: assets[0].steps: must be between 1 and limits.max_steps (150), got 0",
			"a.kiln.yaml:3:60: assets[0].guidance: must be at least 0, got -1",
			"a.kiln.yaml:3:70: assets[0].seed: must be at least 0, got -1",
			"a.kiln.yaml:4:47: assets[1].steps: 500 is more than limits.max_steps (150) (lower it, or raise limits.max_steps in kiln.yaml)",
			"a.kiln.yaml:4:71: assets[1].strength: must be between 0 and 1, got 1.5",
			"a.kiln.yaml:5:61: assets[2].sprite.frames: 300 is more than limits.max_frames (256) (lower it, or raise limits.max_frames in kiln.yaml)",
			"a.kiln.yaml:5:71: assets[2].sprite.fps: must be more than 0 and at most 240, got 0",
			"a.kiln.yaml:5:87: assets[2].sprite.consistency: must be between 0 and 1, got 2",
			"a.kiln.yaml:6:61: assets[3].sprite.frames: must be between 1 and limits.max_frames (256), got 0",
			"a.kiln.yaml:7:65: assets[4].concept.variations: 100 is more than limits.max_variations (64) (lower it, or raise limits.max_variations in kiln.yaml)",
			"a.kiln.yaml:7:85: assets[4].concept.hires.scale: must be more than 1 and at most 4, got 1",
			"a.kiln.yaml:8:65: assets[5].concept.variations: must be between 1 and limits.max_variations (64), got 0",
		}},
		{"frame list too long", map[string]string{
			ConfigFile:    baseConfig + "limits: {max_frames: 2}\n",
			"a.kiln.yaml": m("assets:\n  - {id: a, kind: sprite-sheet, prompt: s, sprite: {frames: [a, b, c]}}\n")}, []string{
			"a.kiln.yaml:3:61: assets[0].sprite.frames: 3 items is more than limits.max_frames (2) (use fewer, or raise limits.max_frames in kiln.yaml)",
		}},
		{"prompt too long", map[string]string{
			ConfigFile:    baseConfig + "limits: {max_prompt_chars: 10}\n",
			"a.kiln.yaml": m("assets:\n  - {id: a, kind: tileable, prompt: a very long prompt}\n")}, []string{
			"a.kiln.yaml:3:37: assets[0].prompt: 18 characters is more than limits.max_prompt_chars (10) (shorten it, or raise limits.max_prompt_chars in kiln.yaml)",
		}},
		{"unknown from", one("assets:\n  - {id: dungeon/floor, kind: tileable, prompt: s}\n  - {id: b, kind: tileable, prompt: s, from: dungeon/flor}\n  - {id: c, kind: tileable, prompt: s, from: c}\n"), []string{
			"a.kiln.yaml:4:46: assets[1].from: unknown asset \"dungeon/flor\" (did you mean \"dungeon/floor\"?)",
			"a.kiln.yaml:5:46: assets[2].from: an asset cannot be made from itself (name another asset)",
		}},
		{"pick", one("assets:\n" +
			"  - {id: a, kind: concept-art, prompt: s, concept: {variations: 2}}\n" +
			"  - {id: b, kind: tileable, prompt: s, from: a, pick: 2}\n" +
			"  - {id: c, kind: tileable, prompt: s, from: b, pick: 1}\n" +
			"  - {id: d, kind: tileable, prompt: s, pick: 1}\n"), []string{
			"a.kiln.yaml:4:55: assets[1].pick: pick 2, but \"a\" has 2 variations (0 to 1)",
			"a.kiln.yaml:5:55: assets[2].pick: pick chooses a concept-art variation or a sprite-sheet frame, but \"b\" is kind tileable (remove pick)",
			"a.kiln.yaml:6:40: assets[3].pick: pick applies only with from: (remove it, or set from: ASSET_ID)",
		}},
		{"path escapes", one("assets:\n" +
			"  - {id: a, kind: image, image: {source: ../x.png}}\n" +
			"  - {id: b, kind: image, image: {source: /etc/x.png}}\n" +
			"  - {id: c, kind: image, image: {source: 'art\\x.png'}}\n" +
			"  - {id: d, kind: image, image: {source: 'C:/x.png'}}\n" +
			"  - {id: e, kind: image, image: {source: art/../../x.png}}\n" +
			"  - {id: f, kind: image, image: {source: art/x.gif}}\n" +
			"  - {id: g, kind: tileable, prompt: s, exemplars: [ok.png, '//server/x.png']}\n" +
			"  - {id: h, kind: sprite-sheet, prompt: s, sprite: {frames: 1, pixel_art: {palette: ../p.gpl}}}\n" +
			"  - {id: i, kind: image, image: {source: 'D:x.png'}}\n"), []string{
			"a.kiln.yaml:3:42: assets[0].image.source: path \"../x.png\" leaves the project with \"..\" (paths are relative to the project root and stay inside it)",
			"a.kiln.yaml:4:42: assets[1].image.source: path \"/etc/x.png\" is absolute (use a path relative to the project root, e.g. art/hero.png)",
			"a.kiln.yaml:5:42: assets[2].image.source: path \"art\\\\x.png\" contains \"\\\" (use \"/\" to separate folders)",
			"a.kiln.yaml:6:42: assets[3].image.source: path \"C:/x.png\" starts with a drive letter (use a path relative to the project root, e.g. art/hero.png)",
			"a.kiln.yaml:7:42: assets[4].image.source: path \"art/../../x.png\" leaves the project with \"..\" (paths are relative to the project root and stay inside it)",
			"a.kiln.yaml:8:42: assets[5].image.source: expected a .png, .jpg or .jpeg file, got \"art/x.gif\"",
			"a.kiln.yaml:9:52: assets[6].exemplars[0]: source file ok.png not found (add the file or fix the path in the manifest)",
			"a.kiln.yaml:9:60: assets[6].exemplars[1]: path \"//server/x.png\" is absolute (use a path relative to the project root, e.g. art/hero.png)",
			"a.kiln.yaml:10:85: assets[7].sprite.pixel_art.palette: path \"../p.gpl\" leaves the project with \"..\" (paths are relative to the project root and stay inside it)",
			"a.kiln.yaml:11:42: assets[8].image.source: path \"D:x.png\" starts with a drive letter (use a path relative to the project root, e.g. art/hero.png)",
		}},
		{"manifest version", map[string]string{"a.kiln.yaml": "version: 2\nassets: [{bogus: 1}]\n"}, []string{
			"a.kiln.yaml:1:10: version: unsupported version 2 (this kiln reads version 1; set version: 1, or use the kiln that wrote this file)",
		}},
		{"manifest version missing", map[string]string{"a.kiln.yaml": "assets: []\n"}, []string{
			"a.kiln.yaml:1:1: missing required field \"version\" (add \"version: 1\" at the top)",
		}},
		{"manifest empty", map[string]string{"a.kiln.yaml": "# nothing yet\n"}, []string{
			"a.kiln.yaml:1:1: missing required field \"version\" (add \"version: 1\" at the top)",
		}},
		{"config version", map[string]string{ConfigFile: "version: 2\n", "a.kiln.yaml": "junk: ["}, []string{
			"kiln.yaml:1:10: version: unsupported version 2 (this kiln reads version 1; set version: 1, or use the kiln that wrote this file)",
		}},
		{"wrong-kind block", one("assets:\n  - {id: a, kind: texture, prompt: s, sprite: {frames: 2}}\n"), []string{
			"a.kiln.yaml:3:39: assets[0].sprite: block \"sprite\" is for kind sprite-sheet, but this asset is kind texture (remove it, or set kind: sprite-sheet)",
		}},
		{"generation field on image", one("assets:\n  - {id: a, kind: image, image: {source: a.png}, steps: 4, prompt: x}\n"), []string{
			"a.kiln.yaml:3:50: assets[0].steps: field \"steps\" does not apply to kind image (image assets are hand-made files; their fields are id, kind, tags, image)",
			"a.kiln.yaml:3:60: assets[0].prompt: field \"prompt\" does not apply to kind image (image assets are hand-made files; their fields are id, kind, tags, image)",
		}},
		{"material on tileable", one("assets:\n  - {id: a, kind: tileable, prompt: s, material: {}}\n"), []string{
			"a.kiln.yaml:3:40: assets[0].material: field \"material\" does not apply to kind tileable (it applies to kind texture)",
		}},
		{"image without block", one("assets:\n  - {id: a, kind: image}\n"), []string{
			"a.kiln.yaml:3:5: assets[0]: kind image needs an image block (add image: {source: art/NAME.png})",
		}},
		{"missing prompt and frames", one("assets:\n  - {id: a, kind: sprite-sheet}\n"), []string{
			"a.kiln.yaml:3:5: assets[0]: missing required field \"prompt\" (describe the picture, e.g. prompt: \"mossy stone floor\")",
			"a.kiln.yaml:3:5: assets[0].sprite.frames: missing required field \"frames\" (add sprite: {frames: 8}, or a list of per-frame prompts)",
		}},
		{"unknown model", one("assets:\n  - {id: a, kind: tileable, prompt: s, model: sd16}\n  - {id: b, kind: tileable, prompt: s, model: 'builtin:exemplr'}\n"), []string{
			"a.kiln.yaml:3:47: assets[0].model: unknown model \"sd16\" (did you mean \"sd15\"?)",
			"a.kiln.yaml:4:47: assets[1].model: unknown built-in model \"builtin:exemplr\" (did you mean \"builtin:exemplar\"?)",
		}},
		{"exemplars need exemplar model", one("assets:\n  - {id: a, kind: tileable, prompt: s, model: sd15, exemplars: [r.png]}\n"), []string{
			"a.kiln.yaml:3:64: assets[0].exemplars: exemplars need the builtin:exemplar model, but this asset uses model \"sd15\" (remove exemplars, or use a model whose path is builtin:exemplar)",
		}},
		{"atlas include", one("assets:\n  - {id: ui/button, kind: image, image: {source: a.png}}\n" +
			"atlases:\n  - {id: ui/atlas, include: [ui/buton, 'hud/*', 'ui/[', ui/button]}\n  - {id: b, include: []}\n"), []string{
			"a.kiln.yaml:5:30: atlases[0].include[0]: unknown asset \"ui/buton\" (did you mean \"ui/button\"?)",
			"a.kiln.yaml:5:40: atlases[0].include[1]: pattern \"hud/*\" matches no asset (\"*\" matches within one id segment, \"**\" across segments)",
			"a.kiln.yaml:5:49: atlases[0].include[2]: glob \"ui/[\" is malformed (check its [ ] brackets)",
			"a.kiln.yaml:6:22: atlases[1].include: must not be empty (list asset ids or globs, e.g. [\"ui/*\"])",
		}},
		{"material refs", one("assets:\n" +
			"  - {id: t, kind: texture, prompt: s, texture: {maps: [albedo, normal]}}\n" +
			"  - {id: s, kind: sprite-sheet, prompt: s, sprite: {frames: 2}}\n" +
			"  - {id: i, kind: image, image: {source: a.png}}\n" +
			"materials:\n" +
			"  - {id: m1, base_color: tt, normal: {asset: t, map: height}, emissive: s}\n" +
			"  - {id: m2, base_color: {asset: i, map: albedo}, orm: t, occlusion: i}\n" +
			"  - {id: m3, alpha_cutoff: 0.3, alpha_mode: BLEND}\n" +
			"  - {id: m4, alpha_mode: blend}\n"), []string{
			"a.kiln.yaml:7:26: materials[0].base_color: unknown asset \"tt\" (did you mean \"t\"?)",
			"a.kiln.yaml:7:38: materials[0].normal: texture \"t\" does not write map \"height\" (its maps: albedo, normal) (add height to texture.maps of \"t\")",
			"a.kiln.yaml:7:73: materials[0].emissive: materials take image, texture, tileable or concept-art assets; \"s\" is kind sprite-sheet",
			"a.kiln.yaml:8:26: materials[1].base_color: map \"albedo\" needs a texture asset, but \"i\" is kind image (remove map:)",
			"a.kiln.yaml:8:56: materials[1].orm: texture \"t\" does not write map \"orm\" (its maps: albedo, normal) (add orm to texture.maps of \"t\")",
			"a.kiln.yaml:8:59: materials[1].occlusion: cannot be set together with orm (orm sets metallic_roughness and occlusion; remove one)",
			"a.kiln.yaml:9:14: materials[2].alpha_cutoff: alpha_cutoff applies only to alpha_mode MASK, not BLEND (set alpha_mode: MASK, or remove alpha_cutoff)",
			"a.kiln.yaml:10:26: materials[3].alpha_mode: expected one of OPAQUE, MASK, BLEND, got \"blend\" (did you mean \"BLEND\"?)",
		}},
		{"sprite and texture checks", one("assets:\n" +
			"  - {id: a, kind: sprite-sheet, prompt: s, sprite: {frames: 2, columns: 3, key_color: red, pixel_art: {colors: 8, palette: p.gpl}}}\n" +
			"  - {id: b, kind: texture, prompt: s, texture: {roughness: [0.9, 0.1], maps: [albedo, albedo], metallic: shiny}}\n" +
			"  - {id: c, kind: concept-art, prompt: s, size: 4096, concept: {hires: {scale: 3}}}\n"), []string{
			"a.kiln.yaml:3:73: assets[0].sprite.columns: 3 columns for 2 frames (use at most as many columns as frames)",
			"a.kiln.yaml:3:87: assets[0].sprite.key_color: expected a colour like \"#ff00ff\", got \"red\"",
			"a.kiln.yaml:3:115: assets[0].sprite.pixel_art.palette: colors and palette cannot both be set (a palette fixes the colours; remove colors)",
			"a.kiln.yaml:4:60: assets[1].texture.roughness: min 0.9 is more than max 0.1 (write [min, max])",
			"a.kiln.yaml:4:87: assets[1].texture.maps[1]: \"albedo\" is listed twice: also at a.kiln.yaml:4:79 (remove one)",
			"a.kiln.yaml:4:106: assets[1].texture.metallic: expected a number from 0 to 1 or \"map\", got \"shiny\"",
			"a.kiln.yaml:5:80: assets[2].concept.hires.scale: hires output 12288x12288 is larger than limits.max_image_size (8192) (lower the scale or the size, or raise limits.max_image_size in kiln.yaml)",
		}},
		{"key_color unquoted", one("assets:\n  - id: a\n    kind: sprite-sheet\n    prompt: s\n    sprite:\n      frames: 2\n      key_color: #ff00ff\n"), []string{
			"a.kiln.yaml:8:17: assets[0].sprite.key_color: expected a colour like \"#ff00ff\", got nothing (an empty value) (quote the colour, e.g. \"#ff00ff\": in YAML an unquoted # starts a comment)",
		}},
		{"invalid yaml with tab", one("assets:\n  - id: a\n\tkind: image\n"), []string{
			"a.kiln.yaml:4:1: invalid YAML: found a tab character that violates indentation (YAML indentation must use spaces, not tabs)",
			" 4 | \tkind: image",
			"   | ^",
		}},
		{"two documents", one("assets: []\n---\nassets: []\n"), []string{
			"a.kiln.yaml:3:1: more than one YAML document in the file (remove the \"---\" separator; kiln reads one document per file)",
		}},
		{"unsupported tag", one("assets:\n  - !include other.yaml\n"), []string{
			"a.kiln.yaml:3:5: assets[0]: unsupported YAML tag \"!include\" (remove the tag; kiln reads plain values)",
		}},
		{"defaults errors reported once", map[string]string{
			ConfigFile:    baseConfig + "  steps: 900\n  sprite: {fsp: 3}\n",
			"a.kiln.yaml": m("defaults:\n  prompt: x\n  texture: {tile: diagonal}\nassets:\n  - {id: a, kind: tileable, prompt: s}\n  - {id: b, kind: tileable, prompt: s}\n")}, []string{
			"a.kiln.yaml:3:3: defaults.prompt: unknown field \"prompt\" (expected one of: model, negative_prompt, seed, steps, guidance, scheduler, size, strength, exemplars, tags, loras, texture, tileable, sprite, concept, atlas, material)",
			"a.kiln.yaml:4:19: defaults.texture.tile: expected one of xy, x, y, none, got \"diagonal\"",
			"kiln.yaml:7:10: defaults.steps: 900 is more than limits.max_steps (150) (lower it, or raise limits.max_steps in kiln.yaml)",
			"kiln.yaml:8:12: defaults.sprite.fsp: unknown field \"fsp\" (did you mean \"fps\"?)",
		}},
		{"config errors", map[string]string{ConfigFile: "version: 1\n" +
			"output: ../out\ncache: out/cache\nmanifests: ['assets/**/x**.yaml']\n" +
			"models:\n  bad name: builtin:exemplar\n  abs: /opt/models/sd\n  nokind: {kind: sdxl}\n  x: 'builtin:nope'\n" +
			"runtime: {device: gpu, memory_budget: 4 gigs, threads: -1}\n" +
			"limits: {max_steps: 0, max_manifest_bytes: 10}\n" +
			"watch: {debounce: soon}\nwatch2: 1\n"}, []string{
			"kiln.yaml:2:9: output: path \"../out\" leaves the project with \"..\" (paths are relative to the project root and stay inside it)",
			"kiln.yaml:4:13: manifests[0]: glob \"assets/**/x**.yaml\" uses \"**\" inside a name (\"**\" must be a whole path segment, e.g. \"art/**/*.png\")",
			"kiln.yaml:6:3: models.bad name: model name \"bad name\" is not valid (use letters, digits, \"_\", \".\" and \"-\", e.g. sd15)",
			"kiln.yaml:7:8: models.abs: path \"/opt/models/sd\" is absolute (use a path relative to the project root, e.g. models/sd15; kiln reads models from inside the project)",
			"kiln.yaml:8:11: models.nokind: missing required field \"path\" (add path: models/NAME or path: builtin:exemplar, or hf: ORG/REPO to pull the folder from Hugging Face)",
			"kiln.yaml:9:6: models.x: unknown built-in model \"builtin:nope\" (built-in models: builtin:exemplar)",
			"kiln.yaml:10:19: runtime.device: expected one of cpu, cuda, tensorrt, coreml, directml, openvino, got \"gpu\" (did you mean \"cpu\"?)",
			"kiln.yaml:10:39: runtime.memory_budget: expected a size in bytes like \"4GiB\" or \"512MB\", got \"4 gigs\"",
			"kiln.yaml:10:56: runtime.threads: must be between 0 and 1024, got -1",
			"kiln.yaml:11:21: limits.max_steps: must be between 1 and 10000, got 0",
			"kiln.yaml:11:44: limits.max_manifest_bytes: must be at least 1024, got 10",
			"kiln.yaml:12:19: watch.debounce: expected a duration like \"100ms\" or \"1.5s\", got \"soon\"",
			"kiln.yaml:13:1: watch2: unknown field \"watch2\" (did you mean \"watch\"?)",
		}},
		{"output is root", map[string]string{ConfigFile: "version: 1\noutput: .\n"}, []string{
			"kiln.yaml:2:9: output: output \".\" is the project folder itself (kiln writes and deletes files in its output folder; use a sub-folder, e.g. output: out)",
		}},
		{"output and cache overlap", map[string]string{ConfigFile: "version: 1\noutput: build\ncache: build/cache\n"}, []string{
			"kiln.yaml:3:8: cache: cache \"build/cache\" lies inside output \"build\" (kiln clean deletes kiln's outputs and kiln writes into the cache folder and kiln clean --cache deletes what it keeps there, so neither may hold the other; give each its own folder, e.g. output: out and cache: .kiln/cache)",
		}},
		{"no model configured for several", map[string]string{
			ConfigFile:    "version: 1\nmodels: {a: models/a, b: models/b}\n",
			"a.kiln.yaml": m("assets:\n  - {id: a, kind: tileable, prompt: s}\n")}, []string{
			"a.kiln.yaml:3:5: assets[0]: no model for this asset (set model: here, or defaults: {model: NAME} in kiln.yaml (models: a, b))",
		}},
		{"alias bomb", one(billionLaughs), []string{
			"a.kiln.yaml:7:14: YAML aliases expand to more than 100565 nodes (this looks like a \"billion laughs\" alias bomb; use fewer or smaller aliases)",
		}},
		{"alias bomb in merge keys", one(mergeBomb), []string{
			"a.kiln.yaml:7:35: YAML aliases expand to more than 100620 nodes (this looks like a \"billion laughs\" alias bomb; use fewer or smaller aliases)",
		}},
		{"deep nesting", one("x-deep: " + strings.Repeat("[", 70) + strings.Repeat("]", 70) + "\n"), []string{
			"a.kiln.yaml:2:73: YAML nesting is deeper than 64 levels (flatten the structure)",
		}},
		{"very deep nesting", one("x-deep: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n"), []string{
			"a.kiln.yaml:2:73: YAML nesting is deeper than 64 levels (flatten the structure)",
		}},
		{"oversized manifest", map[string]string{
			ConfigFile:    baseConfig + "limits: {max_manifest_bytes: 1KiB}\n",
			"a.kiln.yaml": m("# " + strings.Repeat("x", 2000) + "\n")}, []string{
			"a.kiln.yaml: file is 2014 bytes, more than limits.max_manifest_bytes (1024) (split it into several manifests, or raise limits.max_manifest_bytes in kiln.yaml)",
		}},
		{"oversized kiln.yaml", map[string]string{ConfigFile: "version: 1\n# " + strings.Repeat("x", 5<<20) + "\n"}, []string{
			"kiln.yaml: file is 5242894 bytes, more than 4194304 (kiln.yaml is read before its own limits apply; keep it small and put assets in manifests)",
		}},
		{"merge key errors", one("base: &b {kind: image}\nx-base: &c {kind: image, image: {source: 1}}\nassets:\n  - <<: *b\n    id: a\n  - <<: [*c, *b]\n    id: b\n  - <<: 3\n"), []string{
			"a.kiln.yaml:2:1: base: unknown field \"base\" (expected one of: version, defaults, assets, atlases, materials; keys starting with \"x-\" are free, e.g. for anchors)",
			"a.kiln.yaml:3:42: assets[1].image.source: expected a string, got 1 (quote it: \"1\")",
			"a.kiln.yaml:5:5: assets[0]: kind image needs an image block (add image: {source: art/NAME.png})",
			"a.kiln.yaml:9:5: assets[2]: missing required field \"id\" (ids are lower-case names joined by \"/\", e.g. \"dungeon/floor\")",
			"a.kiln.yaml:9:5: assets[2]: missing required field \"kind\" (add kind: image, texture, tileable, sprite-sheet or concept-art)",
			"a.kiln.yaml:9:9: assets[2]: a << merge needs a mapping or a list of mappings, got 3",
		}},
	}
}

func TestErrorMessages(t *testing.T) {
	dump := os.Getenv("KILN_DUMP_ERRORS") != ""
	for _, c := range errCases() {
		t.Run(c.name, func(t *testing.T) {
			got := errLines(t, c.files)
			if dump {
				var b strings.Builder
				fmt.Fprintf(&b, "%q:\n", c.name)
				for _, l := range got {
					fmt.Fprintf(&b, "\t%q,\n", l)
				}
				fmt.Print(b.String())
				return
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(c.want, "\n\t"))
			}
		})
	}
}
