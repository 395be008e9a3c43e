package manifests

import (
	"fmt"
	"slices"
)

// schedulerNames are the samplers a manifest may name, as the sampler
// package implements them.
var schedulerNames = []string{"euler", "euler_a", "ddim", "dpmpp_2m", "lcm", "heun", "unipc", "dpmpp_2m_sde"}

// schedulerOptionUsers says which schedulers take each option of the
// scheduler: mapping, so that an option that would be ignored is an error.
var schedulerOptionUsers = map[string][]string{
	"karras":  {"euler", "heun", "dpmpp_2m", "dpmpp_2m_sde", "unipc"},
	"spacing": {"euler", "euler_a", "ddim", "dpmpp_2m", "heun", "unipc", "dpmpp_2m_sde"},
	"eta":     {"ddim"},
}

// schedulerChoice is the decoded value of scheduler:.
type schedulerChoice struct {
	name string
	opt  SchedulerOptions
}

// schedulerSpec is the spec of scheduler: a name, or a mapping of a name
// and the options diffusers' schedulers read from scheduler_config.json.
func schedulerSpec() *spec {
	names := func(doc string) *spec { return enum(doc, schedulerNames...) }
	return anyOf("Sampler (default: the model's): a name, or {name, karras, spacing, eta}, e.g. "+
		"{name: dpmpp_2m, karras: true, spacing: trailing}. The options replace the model's scheduler_config.json "+
		"settings for this asset.",
		names(""),
		obj("",
			fld("name", names("Sampler.")).req("add name: one of "+joinNames(schedulerNames)),
			fld("karras", boolean("Karras noise levels (use_karras_sigmas): euler, heun, dpmpp_2m, dpmpp_2m_sde, unipc.")),
			fld("spacing", enum("Timestep spacing (timestep_spacing): every sampler but lcm.", "leading", "trailing", "linspace")),
			fld("eta", number("DDIM's noise scale: 0 is deterministic, 1 as much noise as DDPM (ddim only).").rng(0, 1)),
		),
	).describe("one of " + joinNames(schedulerNames) + ", or {name, karras, spacing, eta}").with(schedulerPost)
}

// schedulerPost turns a decoded scheduler: into a schedulerChoice, and
// reports options the chosen sampler does not take.
func schedulerPost(d *decoder, p string, v *value) (any, bool) {
	switch x := v.v.(type) {
	case string:
		return schedulerChoice{name: x}, true
	case *object:
		nv, ok := x.get("name")
		if !ok {
			return nil, false // reported
		}
		c := schedulerChoice{name: nv.v.(string)}
		good := true
		for _, opt := range []string{"karras", "spacing", "eta"} {
			if !x.has(opt) {
				continue
			}
			ov, ok := x.get(opt)
			if !ok {
				good = false // reported
				continue
			}
			users := schedulerOptionUsers[opt]
			if !slices.Contains(users, c.name) {
				d.add(x.keyAt(opt), join(p, opt), fmt.Sprintf("%s does not apply to scheduler %s", opt, c.name),
					fmt.Sprintf("remove %s, or use a scheduler that takes it (%s)", opt, joinNames(users)))
				good = false
				continue
			}
			switch opt {
			case "karras":
				k := ov.v.(bool)
				c.opt.Karras = &k
			case "spacing":
				c.opt.Spacing = ov.v.(string)
			case "eta":
				switch e := ov.v.(type) {
				case float64:
					c.opt.Eta = e
				case int64:
					c.opt.Eta = float64(e)
				}
			}
		}
		return c, good
	}
	return nil, false
}
