package models

import "fmt"

// inpaintingUNet tells an inpainting UNet (SD inpainting exports) from
// the UNet's channels: its sample takes 2·C+1 channels (latents, mask,
// masked-image latents) and it returns C. The sample's channel count was
// read into d.info.LatentChannels; the output's comes from the graph or,
// when symbolic, from unet/config.json's out_channels (4 when absent).
func (d *Diffuser) inpaintingUNet(what string, u *unetGraph) error {
	in := d.info.LatentChannels
	out := 0
	if c := u.out.Shape[1]; c > 0 {
		out = int(c)
	} else if c, ok := d.f.UNetConfig["out_channels"].(float64); ok && c > 0 {
		out = int(c)
	} else if in == 9 {
		out = 4
	}
	switch {
	case out <= 0 || out == in:
		return nil
	case in == 2*out+1:
		d.info.LatentChannels = out
		d.info.InpaintingUNet = true
		return nil
	}
	return fmt.Errorf("%s takes %d channels and returns %d: kiln runs UNets that return what they take, and inpainting UNets that take 2×%d+1 (latents, mask and masked image)", what, in, out, out)
}
