package sampler

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"math"
)

// Inpainting with any model is masked img2img with latent blending, as
// diffusers' StableDiffusionInpaintPipeline runs a UNet of 4 input
// channels:
//
//  1. The init image is encoded (a posterior sample unless UseMean), and
//     the noise drawn, in img2img's order; the starting latents are the
//     image noised to the first step, or pure noise at strength 1.
//  2. The mask is brought to latent size by nearest-neighbour sampling
//     (pixel (8i, 8j) for latent (i, j), torch's interpolate default).
//  3. After every step the region outside the mask is replaced by the
//     clean image latents noised to the next step's level with the same
//     noise, latents = (1−m)·noised + m·latents, and after the last step by
//     the clean latents themselves.
//  4. The decoded image is composited over the init image with the pixel
//     mask, so that where the mask is 0 the output is the input, byte for
//     byte, and where it is 255 it is the decoded image.
//
// diffusers also encodes the masked image, which a 4-channel UNet does not
// use but which draws a posterior sample from the generator; the sampler
// draws the same numbers so that stochastic schedulers see the generator
// where diffusers' do.
//
// An inpainting UNet (Info.InpaintingUNet) is run as diffusers runs one:
// its input is the scaled latents followed by the mask (binarised at one
// half, then sampled to latent size) and the latents of the masked image
// (the init image with the redrawn pixels set to 0, mid-gray), and there
// is no blending. At strength 1 the init image itself is not encoded, so
// the noise is the first draw.

// inpainting is the state latent blending needs from step to step.
type inpainting struct {
	mask  []float32 // lh×lw latent mask, 1 redraws
	clean []float32 // the init image's scaled latents, one image
	extra []float32 // an inpainting UNet's mask and masked-image latents
	noise []float32 // the noise of every image
	buf   []float32
	pix   *image.Gray
	init  *image.NRGBA
}

// checkMask validates the request's mask, if any.
func checkMask(req Request) error {
	if req.Mask == nil {
		return nil
	}
	if req.InitImage == nil {
		return errors.New("an inpainting mask needs an init image to inpaint")
	}
	mb, ib := req.Mask.Bounds(), req.InitImage.Bounds()
	if mb.Dx() != ib.Dx() || mb.Dy() != ib.Dy() {
		return fmt.Errorf("the mask is %dx%d but the init image is %dx%d: give a mask of the image's size",
			mb.Dx(), mb.Dy(), ib.Dx(), ib.Dy())
	}
	return nil
}

// inpaintLatents prepares the starting latents in lat and the blending
// state, drawing from gen in diffusers' order.
func (g *generation) inpaintLatents(ctx context.Context, m Model, req Request, gen *Generator, lat []float32) (*inpainting, error) {
	in := &inpainting{buf: make([]float32, g.per), pix: req.Mask}
	unet9 := g.info.InpaintingUNet
	sampled := false
	if !unet9 || req.Strength != 1 {
		var err error
		if in.clean, sampled, err = g.encode(ctx, m, ImageToTensor(req.InitImage), "init image", req.UseMean, gen); err != nil {
			return nil, err
		}
	}
	in.noise = req.InitNoise
	if in.noise == nil {
		in.noise = make([]float32, len(lat))
		gen.FillNormal(in.noise)
	}
	if unet9 {
		if err := in.maskedImage(ctx, g, m, req, gen); err != nil {
			return nil, err
		}
	} else if sampled {
		// The masked image's posterior sample (see the comment above).
		gen.FillNormal(make([]float32, g.per))
	}
	if req.Strength == 1 {
		// Full strength starts from pure noise, as diffusers does.
		s := float32(g.sch.InitNoiseSigma())
		for i, v := range in.noise {
			lat[i] = v * s
		}
	} else {
		for i := 0; i < g.count; i++ {
			copy(lat[i*g.per:(i+1)*g.per], in.clean)
		}
		g.sch.AddNoise(lat, in.noise)
	}

	in.mask = g.latentMask(req.Mask, false)
	if unet9 {
		in.extra = append(g.latentMask(req.Mask, true), in.extra...)
	}
	ib := req.InitImage.Bounds()
	in.init = image.NewNRGBA(image.Rect(0, 0, ib.Dx(), ib.Dy()))
	draw.Draw(in.init, in.init.Rect, req.InitImage, ib.Min, draw.Src)
	return in, nil
}

// encode encodes one image (what names it in errors) and returns its
// scaled latents: a sample of the VAE's posterior drawn from gen, or its
// mean when useMean is set or the encoder gives no variance (sampled then
// reports false).
func (g *generation) encode(ctx context.Context, m Model, img Tensor, what string, useMean bool, gen *Generator) (z []float32, sampled bool, err error) {
	mean, logvar, err := m.EncodeImage(ctx, img)
	if err != nil {
		return nil, false, fmt.Errorf("encode %s: %w", what, err)
	}
	want := []int64{1, int64(g.info.LatentChannels), int64(g.lh), int64(g.lw)}
	if !sameShape(mean.Shape, want) || len(mean.Data) != g.per {
		return nil, false, fmt.Errorf("encode %s: latent mean has shape %v, want %v", what, mean.Shape, want)
	}
	sampled = len(logvar.Data) > 0 && !useMean
	if sampled && len(logvar.Data) != g.per {
		return nil, false, fmt.Errorf("encode %s: log-variance has shape %v, want %v", what, logvar.Shape, want)
	}
	z = make([]float32, g.per)
	copy(z, mean.Data)
	if sampled {
		eps := make([]float32, g.per)
		gen.FillNormal(eps)
		for i := range z {
			lv := min(max(logvar.Data[i], -30), 20)
			z[i] += float32(math.Exp(0.5*float64(lv))) * eps[i]
		}
	}
	k := float32(g.info.ScalingFactor)
	for i := range z {
		z[i] *= k
	}
	return z, sampled, nil
}

// latentMask samples the pixel mask at latent size (pixel (f·x, f·y) for
// latent (x, y)), in [0, 1]; binary rounds it to 0 or 1 at one half.
func (g *generation) latentMask(mask *image.Gray, binary bool) []float32 {
	out := make([]float32, g.lh*g.lw)
	f := g.info.VAEFactor
	mb := mask.Bounds()
	for y := 0; y < g.lh; y++ {
		for x := 0; x < g.lw; x++ {
			v := float32(mask.GrayAt(mb.Min.X+x*f, mb.Min.Y+y*f).Y) / 255
			if binary {
				v = float32(min(max(math.Floor(float64(v)+0.5), 0), 1))
			}
			out[y*g.lw+x] = v
		}
	}
	return out
}

// maskedImage encodes the init image with its redrawn pixels (mask at
// least one half) set to 0 into in.extra, for an inpainting UNet.
func (in *inpainting) maskedImage(ctx context.Context, g *generation, m Model, req Request, gen *Generator) error {
	img := ImageToTensor(req.InitImage)
	plane := g.width * g.height
	mb := req.Mask.Bounds()
	for y := 0; y < g.height; y++ {
		for x := 0; x < g.width; x++ {
			if req.Mask.GrayAt(mb.Min.X+x, mb.Min.Y+y).Y >= 128 {
				for c := 0; c < 3; c++ {
					img.Data[c*plane+y*g.width+x] = 0
				}
			}
		}
	}
	var err error
	in.extra, _, err = g.encode(ctx, m, img, "masked image", req.UseMean, gen)
	return err
}

// fillInput writes an inpainting UNet's input for the images src into
// dst: per row the latents times scale, the mask and the masked image's
// latents; under guidance twice over.
func (in *inpainting) fillInput(g *generation, dst, src []float32, scale float32) {
	c := len(src) / g.per
	halves := 1
	if g.guided {
		halves = 2
	}
	for h := 0; h < halves; h++ {
		for i := 0; i < c; i++ {
			row := dst[(h*c+i)*g.inPer : (h*c+i+1)*g.inPer]
			for j, v := range src[i*g.per : (i+1)*g.per] {
				row[j] = v * scale
			}
			copy(row[g.per:], in.extra)
		}
	}
}

// blend replaces the kept region of every image's latents after step k
// by the clean latents noised to step k+1's level (clean after the last
// step).
func (in *inpainting) blend(g *generation, k int, lat []float32) {
	if g.info.InpaintingUNet {
		return // the UNet sees the kept region through its mask input
	}
	last := k+1 >= len(g.sch.Timesteps())
	plane := g.lh * g.lw
	for i := 0; i < g.count; i++ {
		ref := in.clean
		if !last {
			copy(in.buf, in.clean)
			at := *g.sch
			at.start += k + 1
			at.AddNoise(in.buf, in.noise[i*g.per:(i+1)*g.per])
			ref = in.buf
		}
		l := lat[i*g.per : (i+1)*g.per]
		for j := range l {
			m := in.mask[j%plane]
			l[j] = (1-m)*ref[j] + m*l[j]
		}
	}
}

// composite puts the init image back into each decoded image where the
// pixel mask is below 255, in proportion to it: where the mask is 0 the
// pixels are the init image's exactly.
func (in *inpainting) composite(images []*image.NRGBA) {
	mb := in.pix.Bounds()
	for _, img := range images {
		w, h := img.Rect.Dx(), img.Rect.Dy()
		for y := 0; y < h; y++ {
			src := in.init.Pix[y*in.init.Stride:]
			dst := img.Pix[y*img.Stride:]
			for x := 0; x < w; x++ {
				m := uint32(in.pix.GrayAt(mb.Min.X+x, mb.Min.Y+y).Y)
				for c := 4 * x; c < 4*x+4; c++ {
					dst[c] = uint8((uint32(src[c])*(255-m) + uint32(dst[c])*m + 127) / 255)
				}
			}
		}
	}
}
