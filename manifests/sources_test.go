package manifests

import (
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/exemplar"
)

// TestMissingExemplarFiles checks that validation reports an exemplar
// file that does not exist where the manifest names it, in the build's
// words, with the nearest file of its folder when one is close.
func TestMissingExemplarFiles(t *testing.T) {
	got := errLines(t, map[string]string{
		ConfigFile: baseConfig + "  exemplars: [refs/base.png]\n",
		"a.kiln.yaml": m("assets:\n" +
			"  - {id: a, kind: tileable, prompt: stone, exemplars: [art/stone.png, art/mos.png, art/grass.png]}\n" +
			"  - {id: b, kind: tileable, prompt: stone}\n" +
			"  - {id: b2, kind: tileable, prompt: stone}\n" +
			"  - {id: c, kind: tileable, prompt: stone, exemplars: [nowhere/x.png]}\n"),
		"art/stones.png": "x", "art/moss.png": "x", "art/grass.png": "x",
	})
	want := []string{
		`a.kiln.yaml:3:56: assets[0].exemplars[0]: source file art/stone.png not found (did you mean "art/stones.png"?)`,
		`a.kiln.yaml:3:71: assets[0].exemplars[1]: source file art/mos.png not found (did you mean "art/moss.png"?)`,
		`a.kiln.yaml:6:56: assets[3].exemplars[0]: source file nowhere/x.png not found (add the file or fix the path in the manifest)`,
		`kiln.yaml:7:15: assets[1].exemplars[0]: source file refs/base.png not found (add the file or fix the path in the manifest)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestExemplarPromptWarnings checks the warning for a prompt the
// built-in exemplar model finds no material in, and that prompts it can
// read, assets with exemplar images and other models are left alone.
func TestExemplarPromptWarnings(t *testing.T) {
	p, err := LoadFSWith(project(map[string]string{
		"a.kiln.yaml": m("assets:\n" +
			"  - {id: a, kind: tileable, prompt: a brave knight}\n" +
			"  - {id: b, kind: tileable, prompt: mossy cobblestones}\n" +
			"  - {id: c, kind: tileable, prompt: dark red}\n" +
			"  - {id: d, kind: tileable, prompt: a brave knight, exemplars: [k.png]}\n" +
			"  - {id: e, kind: tileable, prompt: a brave knight, model: sd15}\n" +
			"  - {id: f, kind: image, image: {source: k.png}}\n"),
		"k.png": "x",
	}), LoadOptions{ExemplarPrompt: exemplar.ReadsPrompt})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range p.Warnings {
		got = append(got, w.Error())
	}
	// The list is the model's own, which grows with it.
	hint := "(add one of the materials it knows: " + strings.Join(exemplar.Materials(), ", ") + " (synonyms such as rock, lawn or magma count too, with colours and overlays such as red, dark, mossy or snowy), or give the asset exemplars: images)"
	want := []string{
		`a.kiln.yaml:3:37: assets[0].prompt: prompt "a brave knight" names no material builtin:exemplar knows, so building it will fail; it reads keywords, not sentences ` + hint,
		`a.kiln.yaml:5:37: assets[2].prompt: prompt "dark red" names no material builtin:exemplar knows, so building it will fail; it reads keywords, not sentences ` + hint,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
