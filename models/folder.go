package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Component folder names of the diffusers / optimum ONNX layout.
const (
	TextEncoder  = "text_encoder"
	TextEncoder2 = "text_encoder_2"
	UNet         = "unet"
	VAEDecoder   = "vae_decoder"
	VAEEncoder   = "vae_encoder"
	Tokenizer    = "tokenizer"
	Tokenizer2   = "tokenizer_2"
	SchedulerDir = "scheduler"
)

// Default VAE scaling factors, used when the VAE config does not state one.
const (
	ScalingFactorSD   = 0.18215 // SD 1.x and 2.x
	ScalingFactorSDXL = 0.13025 // SDXL
)

// Folder is a Stable-Diffusion-format model folder in the diffusers /
// optimum ONNX layout:
//
//	model_index.json
//	text_encoder/model.onnx      (text_encoder_2/ for SDXL)
//	tokenizer/vocab.json, merges.txt, ...   (tokenizer_2/ for SDXL)
//	unet/model.onnx              (+ external weights: weights.pb, model.onnx_data)
//	vae_decoder/model.onnx
//	vae_encoder/model.onnx       (optional; img2img needs it)
//	scheduler/scheduler_config.json (optional)
//
// OpenFolder reads the small JSON files; graphs are opened by a Runtime.
type Folder struct {
	// Dir is the folder's absolute path.
	Dir string
	// Index is model_index.json, decoded.
	Index map[string]any
	// Class is model_index.json's _class_name (for example
	// "ORTStableDiffusionXLPipeline"), "" when absent.
	Class string
	// SDXL reports a second text encoder (SDXL and SDXL-Turbo).
	SDXL bool
	// ScalingFactor is the VAE latent scaling: the VAE config's
	// scaling_factor, else 0.18215 (SD 1.x/2.x) or 0.13025 (SDXL).
	ScalingFactor float64
	// VAEFactor is the VAE's spatial down-scaling, 2^(len(block_out_channels)-1)
	// from the VAE config, else 8.
	VAEFactor int
	// SampleSize is the UNet config's sample_size (latent pixels), 0 when
	// unknown.
	SampleSize int
	// Scheduler is scheduler/scheduler_config.json, nil when absent.
	Scheduler map[string]any
	// UNetConfig is unet/config.json, nil when absent.
	UNetConfig map[string]any
	// CacheDir is where Fingerprint remembers file hashes; OpenFolder sets
	// it to CacheDir(nil) and "" disables remembering.
	CacheDir string

	hashed atomic.Int64 // files hashed (not served from the cache), for tests
}

// OpenFolder checks that dir is a complete model folder and reads its
// configuration. A missing or malformed file is an error that names it;
// all missing files are listed at once.
func OpenFolder(dir string) (*Folder, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("model folder %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("model folder %s does not exist", dir)
		}
		return nil, fmt.Errorf("model folder %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("model %s is a file; give the model folder (the one holding model_index.json)", dir)
	}
	f := &Folder{Dir: abs, VAEFactor: 8}
	f.CacheDir, _ = CacheDir(nil)

	index, err := readJSONObject(filepath.Join(abs, "model_index.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("model folder %s has no model_index.json: it is not a diffusers/optimum ONNX export (make one with, for example, `optimum-cli export onnx --model stabilityai/sd-turbo %s`)", dir, dir)
		}
		return nil, err
	}
	f.Index = index
	f.Class, _ = index["_class_name"].(string)
	f.SDXL = indexLists(index, TextEncoder2) || isDir(filepath.Join(abs, TextEncoder2)) || strings.Contains(f.Class, "XL")

	required := []string{
		TextEncoder + "/model.onnx",
		UNet + "/model.onnx",
		VAEDecoder + "/model.onnx",
		Tokenizer + "/vocab.json",
		Tokenizer + "/merges.txt",
	}
	if f.SDXL {
		required = append(required, TextEncoder2+"/model.onnx", Tokenizer2+"/vocab.json", Tokenizer2+"/merges.txt")
	}
	var missing []string
	for _, r := range required {
		if st, err := os.Stat(filepath.Join(abs, filepath.FromSlash(r))); err != nil || !st.Mode().IsRegular() {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("model folder %s is incomplete: missing %s", dir, strings.Join(missing, ", "))
	}

	if f.Scheduler, err = readOptionalJSON(filepath.Join(abs, SchedulerDir, "scheduler_config.json")); err != nil {
		return nil, err
	}
	if f.UNetConfig, err = readOptionalJSON(filepath.Join(abs, UNet, "config.json")); err != nil {
		return nil, err
	}
	if f.UNetConfig != nil {
		switch v := f.UNetConfig["sample_size"].(type) {
		case float64:
			f.SampleSize = int(v)
		case []any:
			if len(v) > 0 {
				if n, ok := v[0].(float64); ok {
					f.SampleSize = int(n)
				}
			}
		}
	}
	// The decoder's config is authoritative; optimum writes the same VAE
	// config into both folders, older exports only into one or neither.
	var vae map[string]any
	for _, c := range []string{VAEDecoder, VAEEncoder} {
		cfg, err := readOptionalJSON(filepath.Join(abs, c, "config.json"))
		if err != nil {
			return nil, err
		}
		if cfg != nil {
			vae = cfg
			break
		}
	}
	f.ScalingFactor = ScalingFactorSD
	if f.SDXL {
		f.ScalingFactor = ScalingFactorSDXL
	}
	if vae != nil {
		if v, ok := vae["scaling_factor"].(float64); ok && v > 0 {
			f.ScalingFactor = v
		}
		if boc, ok := vae["block_out_channels"].([]any); ok && len(boc) > 0 && len(boc) < 8 {
			f.VAEFactor = 1 << (len(boc) - 1)
		}
	}
	return f, nil
}

// Path returns the graph file of a component ("unet" → <Dir>/unet/model.onnx).
func (f *Folder) Path(component string) string {
	return filepath.Join(f.Dir, component, "model.onnx")
}

// Has reports whether the folder has a component's graph.
func (f *Folder) Has(component string) bool {
	st, err := os.Stat(f.Path(component))
	return err == nil && st.Mode().IsRegular()
}

// indexLists reports whether model_index.json names a component with a
// non-null entry (diffusers writes [null, null] for absent ones).
func indexLists(index map[string]any, component string) bool {
	v, ok := index[component]
	if !ok || v == nil {
		return false
	}
	if a, ok := v.([]any); ok {
		for _, x := range a {
			if x != nil {
				return true
			}
		}
		return false
	}
	return true
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// readJSONObject reads a JSON object; a missing file wraps os.ErrNotExist.
func readJSONObject(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, os.ErrNotExist)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %v", path, jsonErrorPosition(data, err))
	}
	if m == nil {
		return nil, fmt.Errorf("%s: invalid JSON: want an object", path)
	}
	return m, nil
}

// readOptionalJSON is readJSONObject with a missing file returning nil.
func readOptionalJSON(path string) (map[string]any, error) {
	m, err := readJSONObject(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return m, err
}

// jsonErrorPosition adds line:col to a JSON syntax error.
func jsonErrorPosition(data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return err
	}
	line, col := 1, 1
	for i := int64(0); i < se.Offset-1 && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Errorf("line %d:%d: %w", line, col, err)
}
