package lora

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Components a LoRA module can target: the UNet and the (first and, for
// SDXL, second) text encoder, named as the model folder's subfolders.
const (
	UNet         = "unet"
	TextEncoder  = "text_encoder"
	TextEncoder2 = "text_encoder_2"
)

// Module is one low-rank update: the weight of the module Name in
// Component changes by scale · (Alpha/rank) · Up·Down. Name is the
// module's path with every "." replaced by "_" (kohya's spelling), which
// both key layouts and ONNX node names reduce to, so they can be compared.
type Module struct {
	Component string
	Name      string
	// Key is the module's key prefix as the file spells it, for messages.
	Key      string
	Down, Up *Tensor
	// Alpha is the file's alpha; when HasAlpha is false it is taken to be
	// the rank, so the update is unscaled (diffusers/PEFT files).
	Alpha    float64
	HasAlpha bool
}

// Rank is the module's inner dimension, the rows of Down.
func (m *Module) Rank() int64 { return m.Down.Shape[0] }

// Factor is Alpha/rank, the per-module scale both layouts define.
func (m *Module) Factor() float64 {
	if !m.HasAlpha || m.Rank() == 0 {
		return 1
	}
	return m.Alpha / float64(m.Rank())
}

// part says which tensor of a module a key names.
type part int

const (
	partDown part = iota
	partUp
	partAlpha
)

// kohyaPrefixes maps kohya/A1111 key prefixes to components.
var kohyaPrefixes = []struct{ prefix, component string }{
	{"lora_unet_", UNet},
	{"lora_te1_", TextEncoder},
	{"lora_te2_", TextEncoder2},
	{"lora_te_", TextEncoder},
}

// peftPrefixes maps diffusers/PEFT key prefixes to components.
var peftPrefixes = []struct{ prefix, component string }{
	{"unet.", UNet},
	{"text_encoder.", TextEncoder},
	{"text_encoder_2.", TextEncoder2},
	{"base_model.model.", ""}, // PEFT's wrapper: component from the path
}

// suffixes are the tensor-name endings of both layouts.
var suffixes = []struct {
	suffix string
	part   part
}{
	{".lora_down.weight", partDown},
	{".lora_up.weight", partUp},
	{".lora_A.weight", partDown},
	{".lora_B.weight", partUp},
	{".lora.down.weight", partDown},
	{".lora.up.weight", partUp},
	{".alpha", partAlpha},
}

// parseKey splits a tensor name into component, module key, canonical
// module name and part. ok is false for names of neither layout.
func parseKey(name string) (component, key, module string, p part, ok bool) {
	for _, s := range suffixes {
		if strings.HasSuffix(name, s.suffix) {
			key, p, ok = strings.TrimSuffix(name, s.suffix), s.part, true
			break
		}
	}
	if !ok {
		return "", "", "", 0, false
	}
	for _, k := range kohyaPrefixes {
		if rest, found := strings.CutPrefix(key, k.prefix); found {
			if k.component == UNet {
				rest = sgmToDiffusers(rest)
			}
			return k.component, key, rest, p, rest != ""
		}
	}
	path := key
	component = ""
	for _, k := range peftPrefixes {
		if rest, found := strings.CutPrefix(path, k.prefix); found {
			path, component = rest, k.component
			break
		}
	}
	if component == "" {
		component = guessComponent(path)
	}
	if component == "" || path == "" {
		return "", "", "", 0, false
	}
	return component, key, strings.ReplaceAll(path, ".", "_"), p, true
}

// guessComponent names the component of an unprefixed diffusers module
// path by its first element.
func guessComponent(path string) string {
	first, _, _ := strings.Cut(path, ".")
	switch first {
	case "text_model":
		return TextEncoder
	case "down_blocks", "up_blocks", "mid_block", "conv_in", "conv_out", "time_embedding", "add_embedding":
		return UNet
	}
	return ""
}

// sgmToDiffusers renames a kohya SDXL UNet module written with the
// original (SGM/LDM) block names, such as
// input_blocks_4_1_transformer_blocks_0_attn1_to_q, to diffusers' names
// (down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q), which the
// exported graph keeps. Names already in diffusers' spelling are returned
// unchanged. The numbering assumes two layers per block, as in SD 1.x,
// SD 2.x and SDXL.
func sgmToDiffusers(name string) string {
	const layers = 2
	num := func(s string) (int, string, bool) {
		head, rest, _ := strings.Cut(s, "_")
		n, err := strconv.Atoi(head)
		return n, rest, err == nil
	}
	// blockPos splits "N_M_rest" (a block and a layer within it).
	blockPos := func(s string) (n, m int, rest string, ok bool) {
		if n, rest, ok = num(s); ok {
			m, rest, ok = num(rest)
		}
		return n, m, rest, ok
	}
	resnet := func(rest string) string {
		for _, r := range [][2]string{
			{"in_layers_2", "conv1"}, {"out_layers_3", "conv2"},
			{"emb_layers_1", "time_emb_proj"}, {"skip_connection", "conv_shortcut"},
			{"in_layers_0", "norm1"}, {"out_layers_0", "norm2"},
		} {
			if tail, ok := strings.CutPrefix(rest, r[0]); ok {
				return r[1] + tail
			}
		}
		return rest
	}
	switch {
	case strings.HasPrefix(name, "input_blocks_"):
		n, m, rest, ok := blockPos(strings.TrimPrefix(name, "input_blocks_"))
		if !ok {
			return name
		}
		if n == 0 {
			return "conv_in"
		}
		block, layer := (n-1)/(layers+1), (n-1)%(layers+1)
		if layer == layers {
			return fmt.Sprintf("down_blocks_%d_downsamplers_0_conv", block)
		}
		if m == 0 {
			return fmt.Sprintf("down_blocks_%d_resnets_%d_%s", block, layer, resnet(rest))
		}
		return fmt.Sprintf("down_blocks_%d_attentions_%d_%s", block, layer, rest)
	case strings.HasPrefix(name, "middle_block_"):
		m, rest, ok := num(strings.TrimPrefix(name, "middle_block_"))
		if !ok {
			return name
		}
		if m == 1 {
			return "mid_block_attentions_0_" + rest
		}
		return fmt.Sprintf("mid_block_resnets_%d_%s", m/2, resnet(rest))
	case strings.HasPrefix(name, "output_blocks_"):
		n, m, rest, ok := blockPos(strings.TrimPrefix(name, "output_blocks_"))
		if !ok {
			return name
		}
		block, layer := n/(layers+1), n%(layers+1)
		switch {
		case m == 0:
			return fmt.Sprintf("up_blocks_%d_resnets_%d_%s", block, layer, resnet(rest))
		case m == 2 || strings.HasPrefix(rest, "conv"):
			return fmt.Sprintf("up_blocks_%d_upsamplers_0_conv", block)
		default:
			return fmt.Sprintf("up_blocks_%d_attentions_%d_%s", block, layer, rest)
		}
	}
	for _, r := range [][2]string{
		{"time_embed_0", "time_embedding_linear_1"}, {"time_embed_2", "time_embedding_linear_2"},
		{"label_emb_0_0", "add_embedding_linear_1"}, {"label_emb_0_2", "add_embedding_linear_2"},
		{"out_2", "conv_out"},
	} {
		if name == r[0] {
			return r[1]
		}
	}
	return name
}

// LoRA is a parsed LoRA file: its modules sorted by component and name.
type LoRA struct {
	Modules []*Module
	// SHA256 is the file's hex SHA-256 when it was read by Load.
	SHA256 string
}

// maxExamples is how many names an error lists.
const maxExamples = 3

// examples joins up to maxExamples names for a message.
func examples(names []string) string {
	if len(names) > maxExamples {
		return strings.Join(names[:maxExamples], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}

// FromSafetensors groups a safetensors file's tensors into LoRA modules,
// accepting the kohya/A1111 layout (lora_unet_…, lora_te_…, lora_te1_…,
// lora_te2_… with .lora_down, .lora_up and .alpha) and the diffusers/PEFT
// layout (….lora_A.weight, ….lora_B.weight). Keys of neither layout (such
// as LyCORIS or DoRA tensors), modules missing a half, and halves whose
// shapes do not fit together are errors, because applying only part of a
// style would silently produce a different one.
func FromSafetensors(s *Safetensors) (*LoRA, error) {
	byKey := map[string]*Module{}
	var unknown []string
	for _, name := range s.Names() {
		t := s.Tensors[name]
		component, key, module, p, ok := parseKey(name)
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		m := byKey[key]
		if m == nil {
			m = &Module{Component: component, Name: module, Key: key}
			byKey[key] = m
		}
		switch p {
		case partDown:
			m.Down = t
		case partUp:
			m.Up = t
		case partAlpha:
			v, err := t.Float32s()
			if err != nil {
				return nil, err
			}
			if len(v) != 1 {
				return nil, fmt.Errorf("tensor %q: alpha must be a single number, has %d", name, len(v))
			}
			m.Alpha, m.HasAlpha = float64(v[0]), true
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%d of %d tensors are not LoRA weights kiln understands (e.g. %s): kiln reads kohya (lora_unet_…, lora_te…_ with .lora_down/.lora_up/.alpha) and diffusers/PEFT (….lora_A.weight/….lora_B.weight) files; convert the file to one of them", len(unknown), len(s.Tensors), examples(unknown))
	}
	l := &LoRA{}
	seen := map[string]string{}
	for _, m := range byKey {
		if m.Down == nil || m.Up == nil {
			return nil, fmt.Errorf("module %s has no %s tensor; the file is incomplete", m.Key, map[bool]string{true: "down (lora_down/lora_A)", false: "up (lora_up/lora_B)"}[m.Down == nil])
		}
		if len(m.Down.Shape) < 2 || len(m.Up.Shape) < 2 {
			return nil, fmt.Errorf("module %s: down %v and up %v must each have at least two dimensions", m.Key, m.Down.Shape, m.Up.Shape)
		}
		if m.Up.Shape[1] != m.Down.Shape[0] || m.Down.Shape[0] == 0 {
			return nil, fmt.Errorf("module %s: up %v and down %v do not share a rank", m.Key, m.Up.Shape, m.Down.Shape)
		}
		for _, d := range m.Up.Shape[2:] {
			if d != 1 {
				return nil, fmt.Errorf("module %s: up %v has a spatial kernel; kiln merges only LoRAs whose up weights are 1×1", m.Key, m.Up.Shape)
			}
		}
		id := m.Component + "/" + m.Name
		if other, dup := seen[id]; dup {
			return nil, fmt.Errorf("modules %s and %s name the same weight", other, m.Key)
		}
		seen[id] = m.Key
		l.Modules = append(l.Modules, m)
	}
	sort.Slice(l.Modules, func(i, j int) bool {
		a, b := l.Modules[i], l.Modules[j]
		if a.Component != b.Component {
			return a.Component < b.Component
		}
		return a.Name < b.Name
	})
	return l, nil
}

// Parse reads a LoRA from the bytes of a .safetensors file.
func Parse(data []byte) (*LoRA, error) {
	s, err := ParseSafetensors(data)
	if err != nil {
		return nil, err
	}
	return FromSafetensors(s)
}

// Load reads and parses the LoRA file at path and records its SHA-256,
// which cache keys and recipes name it by.
func Load(path string) (*LoRA, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("LoRA %s: %w", path, err)
	}
	l, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("LoRA %s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	l.SHA256 = hex.EncodeToString(sum[:])
	return l, nil
}

// Components counts the LoRA's modules per component.
func (l *LoRA) Components() map[string]int {
	out := map[string]int{}
	for _, m := range l.Modules {
		out[m.Component]++
	}
	return out
}
