package exporters

import (
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
)

// Plan returns the export stages of p's atlases and materials. Problems
// come back together as a manifests.ErrorList, each at the field to fix.
func Plan(p *manifests.Project) ([]pipeline.Stage, error) {
	var stages []pipeline.Stage
	var errs manifests.ErrorList
	for _, m := range p.Materials {
		st, err := materialStage(p, m)
		if err != nil {
			errs = appendErr(errs, err)
			continue
		}
		stages = append(stages, st)
	}
	for _, a := range p.Atlases {
		st, err := atlasStage(p, a)
		if err != nil {
			errs = appendErr(errs, err)
			continue
		}
		stages = append(stages, st)
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return stages, nil
}

// appendErr adds err's entries (or err itself) to errs.
func appendErr(errs manifests.ErrorList, err error) manifests.ErrorList {
	if l, ok := err.(manifests.ErrorList); ok {
		return append(errs, l...)
	}
	return append(errs, &manifests.Error{Msg: err.Error()})
}
