package lora

import (
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		key, component, module string
		part                   part
	}{
		{"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight", UNet, "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", partDown},
		{"lora_unet_mid_block_attentions_0_proj_in.lora_up.weight", UNet, "mid_block_attentions_0_proj_in", partUp},
		{"lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha", TextEncoder, "text_model_encoder_layers_0_self_attn_q_proj", partAlpha},
		{"lora_te1_text_model_encoder_layers_11_mlp_fc1.lora_down.weight", TextEncoder, "text_model_encoder_layers_11_mlp_fc1", partDown},
		{"lora_te2_text_model_encoder_layers_31_mlp_fc2.lora_up.weight", TextEncoder2, "text_model_encoder_layers_31_mlp_fc2", partUp},
		// kohya SDXL files use the original block names.
		{"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight", UNet, "down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", partDown},
		{"lora_unet_input_blocks_8_1_proj_out.lora_down.weight", UNet, "down_blocks_2_attentions_1_proj_out", partDown},
		{"lora_unet_input_blocks_2_0_in_layers_2.lora_down.weight", UNet, "down_blocks_0_resnets_1_conv1", partDown},
		{"lora_unet_input_blocks_3_0_op.lora_down.weight", UNet, "down_blocks_0_downsamplers_0_conv", partDown},
		{"lora_unet_middle_block_1_transformer_blocks_9_ff_net_2.lora_up.weight", UNet, "mid_block_attentions_0_transformer_blocks_9_ff_net_2", partUp},
		{"lora_unet_middle_block_2_emb_layers_1.lora_up.weight", UNet, "mid_block_resnets_1_time_emb_proj", partUp},
		{"lora_unet_output_blocks_5_1_transformer_blocks_1_attn1_to_out_0.lora_up.weight", UNet, "up_blocks_1_attentions_2_transformer_blocks_1_attn1_to_out_0", partUp},
		{"lora_unet_output_blocks_2_2_conv.lora_up.weight", UNet, "up_blocks_0_upsamplers_0_conv", partUp},
		{"lora_unet_output_blocks_0_0_skip_connection.lora_up.weight", UNet, "up_blocks_0_resnets_0_conv_shortcut", partUp},
		{"lora_unet_time_embed_0.lora_up.weight", UNet, "time_embedding_linear_1", partUp},
		// diffusers/PEFT.
		{"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.lora_A.weight", UNet, "down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_k", partDown},
		{"text_encoder.text_model.encoder.layers.0.self_attn.v_proj.lora_B.weight", TextEncoder, "text_model_encoder_layers_0_self_attn_v_proj", partUp},
		{"text_encoder_2.text_model.encoder.layers.0.self_attn.out_proj.lora_A.weight", TextEncoder2, "text_model_encoder_layers_0_self_attn_out_proj", partDown},
		{"base_model.model.up_blocks.1.attentions.0.proj_in.lora_A.weight", UNet, "up_blocks_1_attentions_0_proj_in", partDown},
		{"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v.lora_B.weight", UNet, "down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_v", partUp},
		{"unet.mid_block.attentions.0.proj_in.lora.down.weight", UNet, "mid_block_attentions_0_proj_in", partDown},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			c, _, m, p, ok := parseKey(tt.key)
			if !ok || c != tt.component || m != tt.module || p != tt.part {
				t.Fatalf("parseKey = %q %q %v %v, want %q %q %v", c, m, p, ok, tt.component, tt.module, tt.part)
			}
		})
	}
	for _, bad := range []string{"lora_unet_x.hada_w1_a", "model.diffusion_model.x.weight", "lora_unet_.lora_up.weight", "something.lora_A.weight"} {
		if _, _, _, _, ok := parseKey(bad); ok {
			t.Errorf("parseKey(%q) accepted", bad)
		}
	}
}

func TestFromSafetensors(t *testing.T) {
	down := testTensor{[]int64{2, 3}, make([]float32, 6)}
	up := testTensor{[]int64{4, 2}, make([]float32, 8)}
	good := map[string]testTensor{
		"lora_unet_a_to_q.lora_down.weight":                         down,
		"lora_unet_a_to_q.lora_up.weight":                           up,
		"lora_unet_a_to_q.alpha":                                    {nil, []float32{1}},
		"text_encoder.text_model.encoder.layers.0.fc.lora_A.weight": down,
		"text_encoder.text_model.encoder.layers.0.fc.lora_B.weight": up,
	}
	l, err := Parse(encodeSafetensors(good, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Modules) != 2 {
		t.Fatalf("%d modules", len(l.Modules))
	}
	te, un := l.Modules[0], l.Modules[1]
	if te.Component != TextEncoder || te.Factor() != 1 || te.HasAlpha {
		t.Errorf("text encoder module %+v", te)
	}
	if un.Component != UNet || un.Factor() != 0.5 || un.Rank() != 2 {
		t.Errorf("unet module %+v, factor %v", un, un.Factor())
	}

	tests := []struct {
		name    string
		tensors map[string]testTensor
		want    string
	}{
		{"unknown layout", map[string]testTensor{"lora_unet_a.hada_w1_a": down}, "not LoRA weights"},
		{"no up", map[string]testTensor{"lora_unet_a.lora_down.weight": down}, "no up"},
		{"no down", map[string]testTensor{"lora_unet_a.lora_up.weight": up}, "no down"},
		{"rank", map[string]testTensor{"lora_unet_a.lora_down.weight": down, "lora_unet_a.lora_up.weight": {[]int64{4, 3}, make([]float32, 12)}}, "share a rank"},
		{"1-D", map[string]testTensor{"lora_unet_a.lora_down.weight": {[]int64{2}, make([]float32, 2)}, "lora_unet_a.lora_up.weight": up}, "two dimensions"},
		{"spatial up", map[string]testTensor{"lora_unet_a.lora_down.weight": down, "lora_unet_a.lora_up.weight": {[]int64{1, 2, 3, 3}, make([]float32, 18)}}, "1×1"},
		{"alpha vector", map[string]testTensor{"lora_unet_a.lora_down.weight": down, "lora_unet_a.lora_up.weight": up, "lora_unet_a.alpha": {[]int64{2}, []float32{1, 2}}}, "single number"},
		{"same weight twice", map[string]testTensor{
			"lora_unet_a_b.lora_down.weight": down, "lora_unet_a_b.lora_up.weight": up,
			"unet.a.b.lora_A.weight": down, "unet.a.b.lora_B.weight": up,
		}, "same weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(encodeSafetensors(tt.tensors, nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
