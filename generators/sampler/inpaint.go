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

// inpainting is the state latent blending needs from step to step.
type inpainting struct {
	mask  []float32 // lh×lw latent mask, 1 redraws
	clean []float32 // the init image's scaled latents, one image
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
	mean, logvar, err := m.EncodeImage(ctx, ImageToTensor(req.InitImage))
	if err != nil {
		return nil, fmt.Errorf("encode init image: %w", err)
	}
	want := []int64{1, int64(g.info.LatentChannels), int64(g.lh), int64(g.lw)}
	if !sameShape(mean.Shape, want) || len(mean.Data) != g.per {
		return nil, fmt.Errorf("encode init image: latent mean has shape %v, want %v", mean.Shape, want)
	}
	sample := len(logvar.Data) > 0 && !req.UseMean
	if sample && len(logvar.Data) != g.per {
		return nil, fmt.Errorf("encode init image: log-variance has shape %v, want %v", logvar.Shape, want)
	}
	in := &inpainting{clean: make([]float32, g.per), buf: make([]float32, g.per), pix: req.Mask}
	copy(in.clean, mean.Data)
	if sample {
		eps := make([]float32, g.per)
		gen.FillNormal(eps)
		for i := range in.clean {
			lv := min(max(logvar.Data[i], -30), 20)
			in.clean[i] += float32(math.Exp(0.5*float64(lv))) * eps[i]
		}
	}
	k := float32(g.info.ScalingFactor)
	for i := range in.clean {
		in.clean[i] *= k
	}
	in.noise = req.InitNoise
	if in.noise == nil {
		in.noise = make([]float32, len(lat))
		gen.FillNormal(in.noise)
	}
	if sample {
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

	in.mask = make([]float32, g.lh*g.lw)
	f := g.info.VAEFactor
	mb := req.Mask.Bounds()
	for y := 0; y < g.lh; y++ {
		for x := 0; x < g.lw; x++ {
			in.mask[y*g.lw+x] = float32(req.Mask.GrayAt(mb.Min.X+x*f, mb.Min.Y+y*f).Y) / 255
		}
	}
	ib := req.InitImage.Bounds()
	in.init = image.NewNRGBA(image.Rect(0, 0, ib.Dx(), ib.Dy()))
	draw.Draw(in.init, in.init.Rect, req.InitImage, ib.Min, draw.Src)
	return in, nil
}

// blend replaces the kept region of every image's latents after step k
// by the clean latents noised to step k+1's level (clean after the last
// step).
func (in *inpainting) blend(g *generation, k int, lat []float32) {
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
