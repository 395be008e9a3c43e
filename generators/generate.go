package generators

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/exemplar"
	"github.com/kiln-dev/kiln/models/lora"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/pipeline"
)

// genVersion changes whenever a generation stage would write different
// bytes for the same parameters and model.
const genVersion = "2"

// genParams are the resolved parameters of one diffusion generation: the
// Params of its stage (so every one of them is in the cache key) and the
// content of its PNG recipe.
type genParams struct {
	// Kind is the asset kind, recorded in the recipe.
	Kind      string  `json:"kind"`
	Prompt    string  `json:"prompt"`
	Negative  string  `json:"negative_prompt"`
	Seed      int64   `json:"seed"`
	Steps     int     `json:"steps"`
	Guidance  float64 `json:"guidance"`
	Scheduler string  `json:"scheduler"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	// Karras, Spacing and Eta are the options of a scheduler: mapping
	// (unset: the model's scheduler_config.json applies). Left out of
	// the key when unset, so keys made before they existed still hold.
	Karras  *bool   `json:"karras,omitempty"`
	Spacing string  `json:"spacing,omitempty"`
	Eta     float64 `json:"eta,omitempty"`
	// Tile is the wrap-around axes (xy, x, y), "" for none.
	Tile string `json:"tile,omitempty"`
	// Init names the image img2img starts from ("asset" or
	// "asset#frame_002"); "" for txt2img. Its content is in the key
	// through the dependency.
	Init string `json:"init,omitempty"`
	// Strength is the img2img strength (with Init).
	Strength float64 `json:"strength,omitempty"`
	// Inpaint, with Init, redraws only the masked part of the init image.
	Inpaint *inpaintParams `json:"inpaint,omitempty"`
	// RepairSeams inpaints across a tileable's seams after generating.
	RepairSeams *seamParams `json:"repair_seams,omitempty"`
	// Exemplars are builtin:exemplar's images (project files, also in
	// the stage's Files).
	Exemplars []string `json:"exemplars,omitempty"`
	// LoRAs are merged into the model's weights, in order.
	LoRAs []loraParam `json:"loras,omitempty"`
	// ModelSeed seeds builtin:exemplar's choice of exemplars: the asset's
	// seed, shared by its frames and variations (whose noise seeds
	// differ), so they draw from the same material. Nil for other models.
	ModelSeed *int64 `json:"model_seed,omitempty"`
	// Flipbook makes the generation frame Frame of a looping animation
	// whose frames start from related noises (builtin:exemplar sprite
	// sheets); nil otherwise.
	Flipbook *flipbookParams `json:"flipbook,omitempty"`
	// Extra are further recipe entries (frame, variation, hires pass).
	Extra map[string]string `json:"extra,omitempty"`
	// Provider is the class of execution provider that makes the image
	// (see providerClass): in the key, so an image one provider made is
	// not served to a build on another; not in the recipe.
	Provider string `json:"provider"`
}

// flipbookParams place a generation in a flipbook (see
// exemplar.FlipbookNoise).
type flipbookParams struct {
	Frame  int     `json:"frame"`
	Frames int     `json:"frames"`
	Motion float64 `json:"motion"`
}

// genJob is one generation as a stage runs it.
type genJob struct {
	models  ModelSet
	model   string // name in the model set
	fp      string // its fingerprint, for the recipe
	version string // kiln's version, for the recipe
	p       genParams
	init    *OutputRef // img2img source, nil for txt2img
	initRef OutputRef  // what init points to
	maxSize int
	mem     memoryCheck
	// advise says what to lower when the generation does not fit in
	// memory (see stageMemory.lower), given its estimate at other sizes.
	advise func(est sizeEstimate, fits func(sampler.Memory) bool) string
	// loras are p.LoRAs as run loads them (through loraCache), for the
	// model and the recipe.
	loras     []lora.Weighted
	loraCache *loraCache
}

// run generates the image and its recipe.
func (j *genJob) run(ctx context.Context, r *pipeline.Run) (*image.NRGBA, *imageops.Recipe, error) {
	edges, err := imageops.ParseTile(j.p.Tile)
	if err != nil {
		return nil, nil, err
	}
	var exemplars []image.Image
	for _, f := range j.p.Exemplars {
		img, err := readProjectImage(r.Root, f, j.maxSize)
		if err != nil {
			return nil, nil, fmt.Errorf("exemplar %s: %w", f, err)
		}
		exemplars = append(exemplars, img)
	}
	if j.loras, err = j.loraCache.load(r.Root, j.p.LoRAs); err != nil {
		return nil, nil, err
	}
	var initImg image.Image
	if j.init != nil {
		path, err := r.Input(j.init.Stage, j.init.Output)
		if err != nil {
			return nil, nil, err
		}
		src, err := DecodeImage(path, j.maxSize)
		if err != nil {
			return nil, nil, fmt.Errorf("init image from %s: %w", j.p.Init, err)
		}
		if initImg, err = fitImage(src, j.p.Width, j.p.Height, edges); err != nil {
			return nil, nil, fmt.Errorf("init image from %s: %w", j.p.Init, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if initImg != nil && j.p.Strength <= 0 {
		// Strength 0 departs nothing from the init image: it is the
		// result (a sprite frame at consistency 1 is its reference).
		return imageops.FromImage(initImg).NRGBA(), j.recipe(), nil
	}
	ctx = withEngineNotes(ctx, r)
	m, release, err := j.models.Open(ctx, j.model, OpenOptions{
		Tile:      manifests.Tile(j.p.Tile),
		Prompt:    j.p.Prompt,
		Seed:      uint64(j.modelSeed()),
		Exemplars: exemplars,
		LoRAs:     j.loras,
	})
	if err != nil {
		return nil, nil, err
	}
	defer release()
	req := sampler.Request{
		Prompt:         j.p.Prompt,
		NegativePrompt: j.p.Negative,
		Width:          j.p.Width,
		Height:         j.p.Height,
		Steps:          j.p.Steps,
		Guidance:       j.p.Guidance,
		Scheduler:      j.p.Scheduler,
		Karras:         j.p.Karras,
		Spacing:        j.p.Spacing,
		Eta:            j.p.Eta,
		Seed:           uint64(j.p.Seed),
		Progress:       r.Progress,
	}
	if initImg != nil {
		req.InitImage = initImg
		req.Strength = j.p.Strength
		if j.p.Inpaint != nil {
			if req.Mask, err = j.mask(r, edges); err != nil {
				return nil, nil, err
			}
		}
	}
	if b, ok := m.(interface{ Batcher() *sampler.Batcher }); ok {
		// Stages running at once on the model share their UNet calls
		// (runtime.batch); the image is the same either way, so the
		// cache key does not say.
		req.Batcher = b.Batcher()
	}
	if fb := j.p.Flipbook; fb != nil {
		info := m.Info()
		f := max(info.VAEFactor, 1)
		// Every frame starts from the same noise; Animate below moves
		// the one image it gives (the model is not smooth in its noise).
		noise, err := exemplar.FlipbookFrame(uint64(j.p.Seed), info.LatentChannels, j.p.Height/f, j.p.Width/f,
			exemplar.FlipbookOptions{Frames: fb.Frames}, 0)
		if err != nil {
			return nil, nil, err
		}
		req.InitNoise = noise
	}
	imgs, rep, err := sampler.Generate(ctx, m, req)
	if err != nil {
		return nil, nil, fmt.Errorf("generate with model %q: %w", j.model, err)
	}
	if len(imgs) != 1 {
		return nil, nil, fmt.Errorf("generate with model %q: got %d images, want 1", j.model, len(imgs))
	}
	if j.p.RepairSeams != nil {
		if imgs[0], err = j.repairSeams(ctx, r, m, req, imgs[0]); err != nil {
			return nil, nil, fmt.Errorf("generate with model %q: %w", j.model, err)
		}
	}
	r.Note("provider", providerOf(rep.Provider))
	r.Note("model", j.model)
	if em, ok := m.(*exemplar.Model); ok {
		if imgs[0], err = exemplarPost(ctx, r, em, imgs[0], j.p); err != nil {
			return nil, nil, fmt.Errorf("generate with model %q: %w", j.model, err)
		}
	}
	for i, w := range rep.Warnings {
		key := "warning"
		if i > 0 {
			key += strconv.Itoa(i + 1)
		}
		r.Note(key, w)
		r.Log.Warn(w)
	}
	r.Log.Debug("generated", "model", j.model, "size", fmt.Sprintf("%dx%d", rep.Width, rep.Height),
		"steps", len(rep.Timesteps), "total", rep.Total, "unet", rep.UNetTime, "batched", rep.Batched)
	return imgs[0], j.recipe(), nil
}

// exemplarPost finishes a builtin:exemplar image: a flipbook frame is the
// image moved by the frame's motion (exemplar.Model.Animate), and a prompt
// with several materials notes each one's share of the image.
func exemplarPost(ctx context.Context, r *pipeline.Run, em *exemplar.Model, img *image.NRGBA, p genParams) (*image.NRGBA, error) {
	shares, err := em.MaterialShares(ctx, sampler.ImageToTensor(img).Data, img.Rect.Dx(), img.Rect.Dy())
	if err != nil {
		return nil, err
	}
	if shares != nil {
		r.Note("exemplar.materials", exemplar.FormatShares(shares))
	}
	if fb := p.Flipbook; fb != nil {
		return em.Animate(img, exemplar.FlipbookOptions{Frames: fb.Frames, Motion: fb.Motion}, fb.Frame, uint64(p.Seed))
	}
	return img, nil
}

// withEngineNotes makes the TensorRT engine work done for ctx's calls
// show in stage r's progress line while it runs (a pipeline.NoteStatus
// note: a compile takes minutes), and records each compile and how long it
// took in the stage's report (models.NoteEngineCompile).
func withEngineNotes(ctx context.Context, r *pipeline.Run) context.Context {
	var mu sync.Mutex
	var compiled []string
	return models.WithEngineNotify(ctx, func(e models.EngineEvent) {
		if e.Done && e.Compiled {
			mu.Lock()
			compiled = append(compiled, e.Note())
			r.Note(models.NoteEngineCompile, strings.Join(compiled, ", "))
			mu.Unlock()
		}
		r.Note(pipeline.NoteStatus, e.String())
	})
}

// modelSeed is the seed the model is made with.
func (j *genJob) modelSeed() int64 {
	if j.p.ModelSeed != nil {
		return *j.p.ModelSeed
	}
	return j.p.Seed
}

// recipe is the generation's PNG recipe.
func (j *genJob) recipe() *imageops.Recipe {
	rec := &imageops.Recipe{
		Prompt:         j.p.Prompt,
		NegativePrompt: j.p.Negative,
		Seed:           j.p.Seed,
		Model:          j.fp,
		Scheduler:      j.p.Scheduler,
		Steps:          j.p.Steps,
		Guidance:       j.p.Guidance,
		Version:        j.version,
		Extra:          map[string]string{"kind": j.p.Kind},
	}
	if j.p.Tile != "" {
		rec.Extra["tile"] = j.p.Tile
	}
	if j.p.Karras != nil {
		rec.Extra["karras"] = strconv.FormatBool(*j.p.Karras)
	}
	if j.p.Spacing != "" {
		rec.Extra["spacing"] = j.p.Spacing
	}
	if j.p.Eta != 0 {
		rec.Extra["eta"] = strconv.FormatFloat(j.p.Eta, 'g', -1, 64)
	}
	if len(j.loras) > 0 {
		rec.Extra["loras"] = loraRecipe(j.loras)
	}
	if j.p.Init != "" {
		rec.Extra["init"] = j.p.Init
		rec.Extra["strength"] = strconv.FormatFloat(j.p.Strength, 'g', -1, 64)
	}
	if sp := j.p.RepairSeams; sp != nil {
		sp.recipe(rec.Extra)
	}
	if in := j.p.Inpaint; in != nil {
		rec.Extra["inpaint.mask"] = in.Mask
		rec.Extra["inpaint.feather"] = strconv.Itoa(in.Feather)
	}
	if fb := j.p.Flipbook; fb != nil {
		rec.Extra["flipbook"] = fmt.Sprintf("frame %d of %d, motion %s", fb.Frame, fb.Frames, formatFloat(fb.Motion))
	}
	if j.p.ModelSeed != nil && *j.p.ModelSeed != j.p.Seed {
		rec.Extra["model_seed"] = strconv.FormatInt(*j.p.ModelSeed, 10)
	}
	for k, v := range j.p.Extra {
		rec.Extra[k] = v
	}
	return rec
}

// fitImage returns img at w×h: as it is when it has that size, else
// resampled (Lanczos; wrapping along tiled axes).
func fitImage(img image.Image, w, h int, e imageops.Edges) (image.Image, error) {
	b := img.Bounds()
	if b.Dx() == w && b.Dy() == h {
		return img, nil
	}
	f, err := imageops.Resize(imageops.FromImage(img), w, h, imageops.Lanczos3, e)
	if err != nil {
		return nil, err
	}
	return f.NRGBA(), nil
}

// readProjectImage decodes a project-relative image file.
func readProjectImage(root, rel string, maxSize int) (*image.NRGBA, error) {
	path, err := safepath.Join(root, filepath.FromSlash(rel))
	if err != nil {
		return nil, err
	}
	return DecodeImage(path, maxSize)
}

// writePNG writes img with its recipe as output name, streaming the PNG
// to the output as it is compressed.
func writePNG(r *pipeline.Run, name string, img image.Image, rec *imageops.Recipe) error {
	out, err := r.Create(name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(out, 1<<16)
	if err := imageops.EncodePNG(bw, img, rec); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return out.Close()
}

// readInput decodes output name of dependency dep, and its recipe (nil
// when it has none).
func readInput(r *pipeline.Run, ref OutputRef, maxSize int) (*image.NRGBA, *imageops.Recipe, error) {
	path, err := r.Input(ref.Stage, ref.Output)
	if err != nil {
		return nil, nil, err
	}
	img, err := DecodeImage(path, maxSize)
	if err != nil {
		return nil, nil, err
	}
	rec, err := readRecipeFile(path)
	if err != nil {
		// An input without a recipe (a hand-made image) is fine.
		return img, nil, nil
	}
	return img, &rec, nil
}

// cloneRecipe copies rec (nil gives an empty recipe) so Extra can be
// changed.
func cloneRecipe(rec *imageops.Recipe) *imageops.Recipe {
	out := &imageops.Recipe{}
	if rec != nil {
		*out = *rec
	}
	out.Extra = map[string]string{}
	if rec != nil {
		for k, v := range rec.Extra {
			out.Extra[k] = v
		}
	}
	return out
}

// formatFloat formats a parameter for a recipe.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
