// Package lora reads LoRA style files and merges them into the weights of
// exported ONNX diffusion models.
//
// A LoRA is a set of low-rank updates, one per module of a UNet or text
// encoder: the module's weight W becomes W + scale · (alpha/rank) · up·down.
// Files come in .safetensors form (ParseSafetensors), in either of the two
// layouts in common use: kohya/A1111 keys (lora_unet_…, lora_te_…,
// lora_te1_…/lora_te2_… with .lora_down, .lora_up and .alpha) or
// diffusers/PEFT keys (….lora_A.weight, ….lora_B.weight). Both reduce to
// a module path, which is matched against the node names torch's exporter
// keeps in the graph (/down_blocks.0/attentions.0/…/to_q/MatMul), so the
// weights are found whatever the exporter named the initializers.
//
// Merging happens in memory (Apply): the changed weights are stored
// inline in the decoded model, so a session can be created from the
// encoded bytes without copying a multi-gigabyte model on disk.
package lora
