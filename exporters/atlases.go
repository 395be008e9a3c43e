package exporters

import (
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
)

// atlasStage plans the packing and export of atlas a.
func atlasStage(p *manifests.Project, a *manifests.Atlas) (pipeline.Stage, error) {
	return pipeline.Stage{}, manifests.ErrorList{{Pos: a.Pos, Field: "atlases", Msg: "atlas export is not available in this build of kiln yet", Hint: "remove the atlases: entry for now"}}
}
