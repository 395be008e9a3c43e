package manifests

// LoRA is one entry of a loras: list: a LoRA style file merged into the
// model's weights at a scale.
type LoRA struct {
	// Path is the project-relative .safetensors file, cleaned.
	Path string
	// Scale is the strength: 1 as trained (the default), 0 off, negative
	// to invert the style.
	Scale float64
	// Pos is where the entry is written.
	Pos Pos
}

// loraListSpec is the loras: field of assets, defaults and models.
func loraListSpec() *spec {
	return list("LoRA styles merged into the model's weights as it loads, in order: .safetensors files "+
		"in kohya (lora_unet_…, lora_te_…) or diffusers/PEFT (….lora_A.weight) layout, for the UNet and text encoders. "+
		"A model's loras: apply first, then the asset's (or the defaults').",
		obj("",
			fld("path", pathSpec("The LoRA file, project-relative.", pathInside, "styles/pixel.safetensors", ".safetensors")).
				req("add path: styles/NAME.safetensors"),
			fld("scale", number("Strength: 1 as trained, 0 off, negative inverts the style.").dflt(1.0)),
		)).nonempty("")
}

// loraList reads a decoded loras: list; entries whose path was refused
// are left out (the problem was reported).
func loraList(v any) []LoRA {
	items, _ := v.([]*value)
	var out []LoRA
	for _, it := range items {
		o, ok := it.v.(*object)
		if !ok {
			continue
		}
		pv, ok := o.get("path")
		if !ok {
			continue
		}
		path, _ := pv.v.(string)
		l := LoRA{Path: path, Scale: 1, Pos: it.pos}
		if sv, ok := o.get("scale"); ok {
			switch x := sv.v.(type) {
			case float64:
				l.Scale = x
			case int64:
				l.Scale = float64(x)
			}
		}
		out = append(out, l)
	}
	return out
}
