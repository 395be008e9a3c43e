package generators

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-dev/kiln/models/lora"
)

func TestLoRACacheReadsAFileOnce(t *testing.T) {
	root := t.TempDir()
	write := func(n int64) {
		data, err := lora.EncodeSafetensors([]*lora.Tensor{
			lora.NewF32Tensor("lora_unet_conv_in.lora_down.weight", []int64{1, n}, make([]float32, n)),
			lora.NewF32Tensor("lora_unet_conv_in.lora_up.weight", []int64{1, 1}, []float32{1}),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "s.safetensors"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(2)
	c := &loraCache{}
	ls := []loraParam{{Path: "s.safetensors", Scale: 1}, {Path: "s.safetensors", Scale: 0.5}}
	a, err := c.load(root, ls)
	if err != nil {
		t.Fatal(err)
	}
	if a[0].LoRA != a[1].LoRA || a[1].Scale != 0.5 {
		t.Fatal("one file was parsed twice")
	}
	write(3) // another size: the cache must notice
	b, err := c.load(root, ls[:1])
	if err != nil {
		t.Fatal(err)
	}
	if b[0].LoRA == a[0].LoRA || b[0].LoRA.SHA256 == a[0].LoRA.SHA256 {
		t.Error("an edited file was served from the cache")
	}
	if _, err := c.load(root, []loraParam{{Path: "../escape.safetensors"}}); err == nil {
		t.Error("a path out of the project was read")
	}
	var none *loraCache
	if _, err := none.load(root, ls[:1]); err != nil {
		t.Errorf("nil cache: %v", err)
	}
}
