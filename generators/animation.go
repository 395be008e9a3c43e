package generators

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// AnimationVersion is the version of the Animation format this kiln
// writes and reads.
const AnimationVersion = 1

// Animation is a sprite-sheet's metadata, written next to its frames and
// sheet as <id>.json (and kept in the cache as the SheetStage's
// AnimationOutput), for exporters and for engines that load frames
// themselves. Frames are listed in play order.
type Animation struct {
	// Version is AnimationVersion.
	Version int `json:"version"`
	// Name is the animation's name: the asset id ("hero/walk").
	Name string `json:"name"`
	// FPS is the playback speed in frames per second; Loop says whether
	// the animation repeats.
	FPS  float64 `json:"fps"`
	Loop bool    `json:"loop"`
	// FrameWidth and FrameHeight are the size of every frame in pixels.
	FrameWidth  int `json:"frame_width"`
	FrameHeight int `json:"frame_height"`
	// Transparent says the frames have an alpha channel (the background
	// was keyed out).
	Transparent bool `json:"transparent"`
	// Frames are the frames in play order.
	Frames []AnimationFrame `json:"frames"`
	// Sheet is the grid sheet holding every frame.
	Sheet AnimationSheet `json:"sheet"`
}

// AnimationFrame is one frame of an Animation.
type AnimationFrame struct {
	// Name identifies the frame in atlases: "<id>/frame_000".
	Name string `json:"name"`
	// File is the frame's PNG relative to the metadata file's folder
	// ("walk/frame_000.png" for hero/walk.json).
	File string `json:"file"`
	// Output is the frame's output name in the SheetStage
	// ("frame_000.png"), for exporters that read the cache.
	Output string `json:"output"`
	// X and Y are the frame's top-left corner in the sheet.
	X int `json:"x"`
	Y int `json:"y"`
	// Prompt is the frame's own prompt (per-frame prompts), or "".
	Prompt string `json:"prompt,omitempty"`
}

// AnimationSheet describes an Animation's grid sheet.
type AnimationSheet struct {
	// File is the sheet's PNG relative to the metadata file's folder.
	File string `json:"file"`
	// Output is its output name in the SheetStage (SheetOutput).
	Output  string `json:"output"`
	Columns int    `json:"columns"`
	Rows    int    `json:"rows"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
}

// maxAnimationBytes bounds the metadata ReadAnimation accepts.
const maxAnimationBytes = 16 << 20

// ReadAnimation reads a sprite-sheet's metadata file.
func ReadAnimation(file string) (*Animation, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read animation: %w", err)
	}
	defer f.Close()
	a, err := DecodeAnimation(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return a, nil
}

// DecodeAnimation decodes and checks animation metadata: a known version,
// positive frame size and fps, at least one frame, unique frame names,
// and frames inside the sheet.
func DecodeAnimation(r io.Reader) (*Animation, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxAnimationBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read animation: %w", err)
	}
	if len(data) > maxAnimationBytes {
		return nil, fmt.Errorf("animation metadata is larger than %d bytes", maxAnimationBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var a Animation
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("decode animation metadata: %w", err)
	}
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("animation metadata: %w", err)
	}
	return &a, nil
}

func (a *Animation) check() error {
	switch {
	case a.Version != AnimationVersion:
		return fmt.Errorf("version %d: this kiln reads version %d (rebuild the asset)", a.Version, AnimationVersion)
	case a.Name == "":
		return errors.New("no name")
	case !(a.FPS > 0) || a.FPS > 1000:
		return fmt.Errorf("fps %g: want a positive number up to 1000", a.FPS)
	case a.FrameWidth <= 0 || a.FrameHeight <= 0:
		return fmt.Errorf("frame size %dx%d: want a positive size", a.FrameWidth, a.FrameHeight)
	case len(a.Frames) == 0:
		return errors.New("no frames")
	}
	seen := map[string]bool{}
	for i, f := range a.Frames {
		if f.Name == "" || seen[f.Name] {
			return fmt.Errorf("frame %d: name %q is empty or repeated", i, f.Name)
		}
		seen[f.Name] = true
		if safepath.Validate(f.File) != nil {
			return fmt.Errorf("frame %d: file %q: want a relative path inside the metadata file's folder (no \"..\", no drive letter or backslash)", i, f.File)
		}
		if f.X < 0 || f.Y < 0 || f.X+a.FrameWidth > a.Sheet.Width || f.Y+a.FrameHeight > a.Sheet.Height {
			return fmt.Errorf("frame %d at (%d, %d) lies outside the %dx%d sheet", i, f.X, f.Y, a.Sheet.Width, a.Sheet.Height)
		}
	}
	return nil
}

// encode writes the metadata as indented JSON.
func (a *Animation) encode() ([]byte, error) {
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode animation metadata: %w", err)
	}
	return append(data, '\n'), nil
}
