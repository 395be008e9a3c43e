package exemplar

import (
	"image"
	"math"
)

// canvas is an exemplar being painted: linear RGB in [0, 1] (values are
// treated as sRGB-encoded; nothing here needs linear light) plus a height
// map in [0, 1] that overlays (moss in crevices, snow on tops) read. Every
// painter works on the unit torus, so exemplars tile seamlessly.
type canvas struct {
	s       int
	r, g, b []float64
	ht      []float64
}

func newCanvas(s int) *canvas {
	n := s * s
	return &canvas{s: s, r: make([]float64, n), g: make([]float64, n), b: make([]float64, n), ht: make([]float64, n)}
}

// rgb is a colour in [0, 1].
type rgb [3]float64

func (c rgb) scale(k float64) rgb { return rgb{c[0] * k, c[1] * k, c[2] * k} }

func mix(a, b rgb, t float64) rgb {
	return rgb{lerp(a[0], b[0], t), lerp(a[1], b[1], t), lerp(a[2], b[2], t)}
}

func (cv *canvas) set(i int, c rgb) { cv.r[i], cv.g[i], cv.b[i] = c[0], c[1], c[2] }

func (cv *canvas) get(i int) rgb { return rgb{cv.r[i], cv.g[i], cv.b[i]} }

// each calls fn for every pixel with its index and torus coordinates
// (u, v) in [0, 1), x to the right and y down.
func (cv *canvas) each(fn func(i int, u, v float64)) {
	s := cv.s
	for y := 0; y < s; y++ {
		for x := 0; x < s; x++ {
			fn(y*s+x, (float64(x)+0.5)/float64(s), (float64(y)+0.5)/float64(s))
		}
	}
}

// image converts the canvas to an 8-bit image.
func (cv *canvas) image() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, cv.s, cv.s))
	for i := range cv.r {
		img.Pix[4*i] = to8(cv.r[i])
		img.Pix[4*i+1] = to8(cv.g[i])
		img.Pix[4*i+2] = to8(cv.b[i])
		img.Pix[4*i+3] = 255
	}
	return img
}

func to8(v float64) uint8 {
	if !(v > 0) {
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(math.Round(v * 255))
}

// grain is per-pixel white noise in [-1, 1], the fine speckle that keeps
// flat areas from looking synthetic.
func grain(i int, seed uint64) float64 { return 2*hashf(mix64(uint64(i)*0x9e37+seed)) - 1 }

// painter paints one material on a canvas of side s from a seed.
type painter func(cv *canvas, seed uint64)

// painters maps each built-in material to its painter.
var painters = map[string]painter{
	"stone":       paintStone,
	"brick":       paintBrick,
	"cobblestone": paintCobblestone,
	"planks":      paintPlanks,
	"bark":        paintBark,
	"grass":       paintGrass,
	"moss":        paintMoss,
	"dirt":        paintDirt,
	"sand":        paintSand,
	"snow":        paintSnow,
	"ice":         paintIce,
	"water":       paintWater,
	"lava":        paintLava,
	"metal":       paintMetal,
	"tiles":       paintTiles,
	"fabric":      paintFabric,
	"fire":        paintFire,
	"smoke":       paintSmoke,
	"marble":      paintMarble,
	"gravel":      paintGravel,
}

// warped returns torus coordinates displaced by periodic noise, which
// makes cellular patterns look natural rather than geometric.
func warped(u, v, amount float64, freq int, seed uint64) (float64, float64) {
	du := fbm(u, v, freq, freq, 3, 0.5, seed)
	dv := fbm(u, v, freq, freq, 3, 0.5, seed+77)
	return fract(u + amount*du), fract(v + amount*dv)
}

func paintStone(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		n := fbm(u, v, 3, 3, 6, 0.55, seed)
		d := fbm(u, v, 12, 12, 3, 0.5, seed+1)
		wu, wv := warped(u, v, 0.08, 4, seed+2)
		f1, f2, id := worley(wu, wv, 4, 4, 0.9, seed+3)
		e := f2 - f1
		// Fissures between rock plates: a dark core in a wide shadow.
		// Features must cover some area to survive the denoiser's
		// averaging at high noise: hairlines alone would fade.
		core := 1 - smoothstep(0.02, 0.09, e)
		halo := 1 - smoothstep(0.05, 0.3, e)
		g1, g2, _ := worley(wu, wv, 8, 8, 0.9, seed+4)
		hair := (1 - smoothstep(0, 0.035, g2-g1)) * smoothstep(0.05, 0.35, fbm(u, v, 3, 3, 2, 0.5, seed+5))
		// Pits and mineral grains.
		p1, _, pid := worley(u, v, 20, 20, 0.9, seed+6)
		pit := 0.0
		if hashf(pid) < 0.3 {
			pit = 1 - smoothstep(0.08, 0.22, p1)
		}
		plate := 0.8 + 0.35*hashf(id)
		l := plate * (0.5 + 0.2*n + 0.07*d + 0.035*grain(i, seed))
		l *= 1 - 0.55*core - 0.3*halo - 0.3*hair - 0.35*pit
		if hashf(mix64(uint64(i)+seed)) < 0.02 {
			l *= 1.25 // glinting grains
		}
		tint := 0.04 * fbm(u, v, 2, 2, 2, 0.5, seed+7)
		cv.set(i, rgb{l * (1.02 + tint), l, l * (0.95 - tint)})
		cv.ht[i] = clamp(0.6+0.3*n-0.5*core-0.2*halo-0.3*pit, 0, 1)
	})
}

func paintBrick(cv *canvas, seed uint64) {
	s := float64(cv.s)
	const rows, cols = 8, 4
	bh, bw := s/rows, s/cols
	mortar := math.Max(1.5, s*2.5/128)
	cv.each(func(i int, u, v float64) {
		row := int(v * rows)
		uu := u + float64(row%2)*0.5/cols
		col := int(math.Floor(uu*cols)) % cols
		lx, ly := fract(uu*cols)*bw, fract(v*rows)*bh
		edge := math.Min(math.Min(lx, bw-lx), math.Min(ly, bh-ly))
		rough := 0.8 * fbm(u, v, 16, 16, 3, 0.5, seed+1)
		id := hash2(col, row, seed)
		if edge < mortar/2+rough {
			n := fbm(u, v, 24, 24, 2, 0.5, seed+2)
			l := 0.6 + 0.06*n + 0.04*grain(i, seed) - 0.12*smoothstep(mortar/2, 0, edge)
			cv.set(i, rgb{l * 1.03, l, l * 0.93})
			cv.ht[i] = 0.15 + 0.05*n
			return
		}
		// Each brick has its own shade and a slight shift towards orange
		// or purple-brown, as fired clay does.
		k := 0.78 + 0.34*hashf(id)
		hue := hashf(mix64(id)) - 0.5
		base := mix(rgb{0.60, 0.24, 0.15}, rgb{0.66, 0.34, 0.18}, hue+0.5)
		if hashf(mix64(id+7)) < 0.15 {
			base = rgb{0.42, 0.19, 0.14} // over-fired, dark brick
		}
		n := fbm(u, v, 8, 8, 4, 0.5, seed+3)
		bevel := 0.8 + 0.2*smoothstep(mortar/2, mortar/2+2.5, edge)
		l := k * bevel * (1 + 0.14*n + 0.06*grain(i, seed))
		c := base.scale(l)
		// Soot and lime stains.
		st := fbm(u, v, 3, 3, 3, 0.5, seed+4)
		c = mix(c, rgb{0.25, 0.2, 0.18}, 0.3*smoothstep(0.25, 0.6, st))
		cv.set(i, c)
		cv.ht[i] = clamp(0.7+0.1*n-0.2*(1-bevel), 0, 1)
	})
}

func paintCobblestone(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		wu, wv := warped(u, v, 0.05, 3, seed)
		f1, f2, id := worley(wu, wv, 6, 6, 0.85, seed+1)
		e := f2 - f1
		n := fbm(u, v, 12, 12, 3, 0.5, seed+2)
		if e < 0.1+0.03*n {
			// Gaps: dark earth and grit between the stones.
			l := 0.17 + 0.05*n + 0.04*grain(i, seed)
			cv.set(i, rgb{l * 1.1, l, l * 0.85})
			cv.ht[i] = 0.1 * smoothstep(0, 0.1, e)
			return
		}
		dome := smoothstep(0.1, 0.55, e)
		k := 0.42 + 0.22*hashf(id)
		warm := hashf(mix64(id)) - 0.5
		base := rgb{k * (1 + 0.12*warm), k, k * (1 - 0.12*warm)}
		l := (0.62 + 0.45*math.Sqrt(dome)) * (1 + 0.12*n + 0.05*grain(i, seed))
		cv.set(i, base.scale(l))
		cv.ht[i] = 0.3 + 0.7*math.Sqrt(dome)
	})
}

func paintPlanks(cv *canvas, seed uint64) {
	const rows = 4
	s := float64(cv.s)
	ph := s / rows
	gap := math.Max(1.5, s*2.5/128)
	bevel := math.Max(2, s*5/128)
	cv.each(func(i int, u, v float64) {
		row := int(v * rows)
		joint := hashf(hash2(row, 0, seed))
		// Each row has two boards, meeting at a butt joint.
		du := fract(u - joint)
		part := 0
		if du > 0.5 {
			part = 1
		}
		id := hash2(row, part, seed+1)
		ly := fract(v*rows) * ph
		// Distance to the nearest board edge: the long gap at the top of
		// the row and the butt joints at du = 0 and 0.5.
		jx := math.Min(math.Min(du, 1-du), math.Abs(du-0.5)) * s
		edge := math.Min(math.Min(ly, ph-ly+gap), jx+gap/2)
		if edge < gap {
			l := 0.09 + 0.03*grain(i, seed)
			cv.set(i, rgb{l * 1.3, l, l * 0.7})
			cv.ht[i] = 0
			return
		}
		// Grain: growth rings cut lengthwise are stretched, wavy lines.
		w := 1.6 * fbm(u, v, 2, 6, 3, 0.5, seed+uint64(id%97))
		t := v*float64(rows)*7 + w + 3*hashf(id)
		// A knot bends the grain around itself.
		kx, ky := hashf(mix64(id)), (float64(row)+0.3+0.4*hashf(mix64(id+1)))/rows
		dx, dy := math.Remainder(u-kx, 1)*s, (v-ky)*s
		knot := math.Exp(-(dx*dx/36 + dy*dy/9))
		t += 2.5 * knot
		ring := math.Pow(0.5+0.5*math.Sin(2*math.Pi*t), 4)
		fibre := fbm(u, v, 3, 48, 3, 0.6, seed+3)
		// Boards differ clearly in tone, as real floors do.
		k := 0.68 + 0.5*hashf(mix64(id+2))
		base := mix(rgb{0.56, 0.36, 0.19}, rgb{0.68, 0.47, 0.26}, hashf(mix64(id+3)))
		l := k * (1 - 0.28*ring + 0.08*fibre + 0.03*grain(i, seed)) * (1 - 0.5*knot)
		// Rounded board edges fall into shadow.
		l *= 0.62 + 0.38*smoothstep(gap, gap+bevel, edge)
		cv.set(i, base.scale(l))
		cv.ht[i] = clamp(0.7-0.2*ring, 0, 1) * smoothstep(gap, gap+bevel, edge)
	})
}

func paintBark(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		// Plates are cells of a network stretched along the trunk; the
		// fissures between them are wide and dark.
		wu, wv := warped(u, v, 0.03, 4, seed)
		f1, f2, id := worley(wu, wv, 7, 2, 0.9, seed+1)
		e := f2 - f1
		plate := smoothstep(0.06, 0.22, e)
		fibre := fbm(u, v, 24, 3, 3, 0.5, seed+2)
		k := 0.8 + 0.35*hashf(id)
		top := mix(rgb{0.36, 0.29, 0.22}, rgb{0.50, 0.43, 0.35}, clamp(0.5+fibre, 0, 1)).scale(k)
		c := mix(rgb{0.07, 0.05, 0.04}, top, plate)
		c = c.scale((0.75 + 0.25*math.Sqrt(plate)) * (1 + 0.06*grain(i, seed)))
		// Grey-green lichen on some plates.
		li := smoothstep(0.3, 0.6, fbm(u, v, 5, 5, 4, 0.5, seed+3)) * plate
		c = mix(c, rgb{0.50, 0.55, 0.42}, 0.5*li)
		cv.set(i, c)
		cv.ht[i] = plate
	})
}

func paintGrass(cv *canvas, seed uint64) {
	s := cv.s
	fs := float64(s)
	cv.each(func(i int, u, v float64) {
		n := fbm(u, v, 4, 4, 3, 0.5, seed)
		cv.set(i, rgb{0.10, 0.18, 0.05}.scale(0.8+0.3*n))
		cv.ht[i] = 0
	})
	g := newRNG(seed + 1)
	blades := s * s / 7
	for k := 0; k < blades; k++ {
		x0, y0 := g.rangef(0, fs), g.rangef(0, fs)
		length := g.rangef(7, 15) * fs / 128
		ang := g.rangef(-0.45, 0.45) + 0.15*fbm(x0/fs, y0/fs, 2, 2, 2, 0.5, seed+2)
		bend := g.rangef(-0.3, 0.3)
		tone := g.float()
		c := mix(rgb{0.16, 0.38, 0.07}, rgb{0.42, 0.60, 0.16}, tone)
		if g.float() < 0.12 {
			c = rgb{0.58, 0.60, 0.26} // dry blade
		}
		width := g.rangef(0.7, 1.4) * fs / 128
		steps := int(length * 2)
		for st := 0; st <= steps; st++ {
			t := float64(st) / float64(steps)
			a := ang + bend*t*t
			x := x0 + math.Sin(a)*length*t
			y := y0 - math.Cos(a)*length*t
			shade := 0.55 + 0.6*t
			wd := width * (1 - 0.7*t)
			r := int(math.Ceil(wd))
			cx, cy := int(math.Floor(x)), int(math.Floor(y))
			for py := cy - r; py <= cy+r; py++ {
				for px := cx - r; px <= cx+r; px++ {
					dd := math.Hypot(float64(px)+0.5-x, float64(py)+0.5-y)
					if dd > wd+0.5 {
						continue
					}
					j := wrapInt(py, s)*s + wrapInt(px, s)
					cover := clamp(wd+0.5-dd, 0, 1)
					cv.set(j, mix(cv.get(j), c.scale(shade), cover))
					cv.ht[j] = math.Max(cv.ht[j], t)
				}
			}
		}
	}
}

func paintMoss(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		f1, _, id := worley(u, v, 10, 10, 0.9, seed)
		dome := clamp(1-f1*1.3, 0, 1)
		n := fbm(u, v, 5, 5, 4, 0.5, seed+1)
		fine := fbm(u, v, 40, 40, 2, 0.5, seed+2)
		k := 0.8 + 0.3*hashf(id)
		l := k * (0.55 + 0.35*dome + 0.2*n + 0.18*fine + 0.12*grain(i, seed))
		c := mix(rgb{0.16, 0.26, 0.05}, rgb{0.42, 0.55, 0.12}, clamp(0.5+0.5*n+0.3*fine, 0, 1))
		if hashf(mix64(uint64(i)+seed)) < 0.04 {
			c = rgb{0.62, 0.68, 0.25} // bright sporophyte tips
		}
		cv.set(i, c.scale(l))
		cv.ht[i] = clamp(0.4+0.5*dome+0.1*n, 0, 1)
	})
}

func paintDirt(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		n := fbm(u, v, 4, 4, 5, 0.55, seed)
		m := fbm(u, v, 14, 14, 3, 0.5, seed+1)
		base := mix(rgb{0.30, 0.21, 0.13}, rgb{0.45, 0.34, 0.22}, clamp(0.5+0.7*n, 0, 1))
		l := 1 + 0.12*m + 0.08*grain(i, seed)
		c := base.scale(l)
		f1, _, id := worley(u, v, 16, 16, 0.9, seed+2)
		if r := 0.22 * hashf(id); f1 < r && hashf(mix64(id)) < 0.45 {
			// Pebbles, shaded as little domes lit from the top left.
			k := 0.4 + 0.25*hashf(mix64(id+1))
			sh := 0.75 + 0.35*(1-f1/r)
			c = rgb{k * 1.05, k, k * 0.9}.scale(sh)
		}
		if hashf(mix64(uint64(i)*3+seed)) < 0.03 {
			c = c.scale(0.6)
		}
		cv.set(i, c)
		cv.ht[i] = clamp(0.5+0.4*n, 0, 1)
	})
}

func paintGravel(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		f1, f2, id := worley(u, v, 14, 14, 0.9, seed)
		e := f2 - f1
		c := rgb{0.22, 0.2, 0.18}
		h := 0.0
		if e > 0.08 {
			dome := smoothstep(0.08, 0.5, e)
			k := 0.38 + 0.3*hashf(id)
			warm := hashf(mix64(id)) - 0.5
			c = rgb{k * (1 + 0.15*warm), k, k * (1 - 0.15*warm)}.scale(0.7 + 0.45*dome)
			h = dome
		}
		c = c.scale(1 + 0.06*grain(i, seed))
		cv.set(i, c)
		cv.ht[i] = h
	})
}

func paintSand(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		w := fbm(u, v, 3, 3, 3, 0.5, seed)
		t := v*9 + u*2 + 0.6*w
		rip := math.Sin(2 * math.Pi * t)
		// Ripples have a steep lee side: shade by the slope.
		shade := 0.06*rip + 0.04*math.Sin(4*math.Pi*t+1)
		n := fbm(u, v, 3, 3, 3, 0.5, seed+1)
		c := mix(rgb{0.80, 0.67, 0.45}, rgb{0.88, 0.78, 0.56}, clamp(0.5+0.8*n, 0, 1))
		c = c.scale(1 + shade + 0.06*grain(i, seed))
		if hashf(mix64(uint64(i)+seed*5)) < 0.025 {
			c = c.scale(0.7)
		}
		cv.set(i, c)
		cv.ht[i] = 0.5 + 0.5*rip
	})
}

func paintSnow(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		n := fbm(u, v, 3, 3, 5, 0.55, seed)
		b := fbm(u, v, 10, 10, 3, 0.5, seed+1)
		sh := smoothstep(-0.1, 0.5, n+0.3*b)
		c := mix(rgb{0.96, 0.97, 0.99}, rgb{0.74, 0.81, 0.92}, sh*0.8)
		c = c.scale(1 + 0.02*grain(i, seed))
		if hashf(mix64(uint64(i)+seed)) < 0.006 {
			c = rgb{1, 1, 1}
		}
		cv.set(i, c)
		cv.ht[i] = 1 - sh
	})
}

func paintIce(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		n := fbm(u, v, 3, 3, 5, 0.55, seed)
		c := mix(rgb{0.48, 0.70, 0.85}, rgb{0.78, 0.90, 0.97}, clamp(0.55+0.35*n, 0, 1))
		wu, wv := warped(u, v, 0.06, 3, seed+1)
		f1, f2, _ := worley(wu, wv, 5, 5, 0.95, seed+2)
		crack := 1 - smoothstep(0.02, 0.08, f2-f1)
		halo := 1 - smoothstep(0.04, 0.25, f2-f1)
		g1, g2, _ := worley(wu, wv, 9, 9, 0.95, seed+3)
		fine := (1 - smoothstep(0, 0.04, g2-g1)) * smoothstep(0, 0.4, fbm(u, v, 4, 4, 2, 0.5, seed+4))
		// Cracks are bright all across (a white core in frosty light):
		// a feature that averages out when blurred (a white line between
		// dark edges) would be lost at the denoiser's coarse levels.
		c = mix(c, rgb{0.88, 0.95, 0.99}, 0.6*halo)
		c = mix(c, rgb{0.98, 0.99, 1}, 0.9*crack+0.5*fine)
		c = c.scale(0.9 + 0.1*smoothstep(0.1, 0.4, f1))
		// Streaks of trapped air.
		st := fbm(u, v, 2, 20, 3, 0.5, seed+5)
		c = mix(c, rgb{0.9, 0.95, 1}, 0.25*smoothstep(0.2, 0.6, st))
		c = c.scale(1 + 0.015*grain(i, seed))
		cv.set(i, c)
		cv.ht[i] = 0.5 + 0.3*n
	})
}

func paintWater(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		n := fbm(u, v, 2, 2, 4, 0.5, seed)
		c := mix(rgb{0.04, 0.22, 0.38}, rgb{0.08, 0.38, 0.52}, clamp(0.5+0.8*n, 0, 1))
		wu, wv := warped(u, v, 0.09, 3, seed+1)
		f1, f2, _ := worley(wu, wv, 5, 5, 0.9, seed+2)
		caus := math.Pow(1-smoothstep(0, 0.16, f2-f1), 2)
		g1, g2, _ := worley(wu, wv, 9, 9, 0.9, seed+3)
		caus2 := math.Pow(1-smoothstep(0, 0.12, g2-g1), 2)
		c = mix(c, rgb{0.55, 0.85, 0.9}, 0.65*caus+0.3*caus2)
		c = c.scale(1 + 0.02*grain(i, seed))
		cv.set(i, c)
		cv.ht[i] = 0.5 + 0.5*caus
	})
}

// fireRamp maps heat in [0, 1] to the colour of flames and molten rock:
// black, deep red, orange, yellow, near white.
func fireRamp(t float64) rgb {
	stops := []struct {
		t float64
		c rgb
	}{
		{0, rgb{0.03, 0.01, 0.01}},
		{0.3, rgb{0.55, 0.05, 0.01}},
		{0.55, rgb{0.92, 0.32, 0.03}},
		{0.8, rgb{1.0, 0.72, 0.18}},
		{1, rgb{1.0, 0.95, 0.7}},
	}
	t = clamp(t, 0, 1)
	for k := 1; k < len(stops); k++ {
		if t <= stops[k].t {
			a, b := stops[k-1], stops[k]
			return mix(a.c, b.c, (t-a.t)/(b.t-a.t))
		}
	}
	return stops[len(stops)-1].c
}

func paintLava(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		wu, wv := warped(u, v, 0.07, 3, seed)
		f1, f2, id := worley(wu, wv, 5, 5, 0.9, seed+1)
		e := f2 - f1
		n := fbm(u, v, 6, 6, 4, 0.5, seed+2)
		heat := 1 - smoothstep(0.0, 0.14+0.05*n, e)
		pool := smoothstep(0.35, 0.6, fbm(u, v, 3, 3, 3, 0.5, seed+3))
		heat = math.Max(heat, pool)
		crust := rgb{0.11, 0.08, 0.07}.scale(0.75 + 0.5*hashf(id) + 0.25*n + 0.1*grain(i, seed))
		// Crust near the cracks glows dull red.
		crust = mix(crust, rgb{0.35, 0.06, 0.02}, 0.6*(1-smoothstep(0.1, 0.25, e)))
		c := mix(crust, fireRamp(0.35+0.65*heat+0.1*n), smoothstep(0.05, 0.5, heat))
		cv.set(i, c)
		cv.ht[i] = clamp(1-heat, 0, 1)
	})
}

func paintMetal(cv *canvas, seed uint64) {
	s := float64(cv.s)
	const panels = 4
	pw := s / panels
	seam := math.Max(1.5, s*2.5/128)
	bev := math.Max(2, s*3.5/128)
	rivetR := math.Max(1.5, s*2.8/128)
	inset := pw * 0.18
	cv.each(func(i int, u, v float64) {
		// Rows of panels are staggered, as hull plating is.
		row := int(v * panels)
		uu := fract(u + float64(row%2)*0.5/panels)
		px := int(uu * panels)
		lx, ly := fract(uu*panels)*pw, fract(v*panels)*pw
		id := hash2(px, row, seed)
		brushed := fbm(u, v, 1, 48, 3, 0.6, seed+uint64(id%31))
		stain := fbm(u, v, 3, 3, 4, 0.5, seed+1)
		k := 0.46 + 0.2*hashf(id)
		l := k * (1 + 0.08*brushed - 0.15*smoothstep(0.2, 0.7, stain) + 0.02*grain(i, seed))
		c := rgb{l * 0.96, l, l * 1.05}
		h := 0.6
		edge := math.Min(math.Min(lx, pw-lx), math.Min(ly, pw-ly))
		switch {
		case edge < seam/2:
			c, h = rgb{0.08, 0.08, 0.09}, 0
		case edge < seam/2+bev:
			// Bevel: lit from the top left.
			if math.Min(lx, ly) < math.Min(pw-lx, pw-ly) {
				c = c.scale(1.45)
			} else {
				c = c.scale(0.55)
			}
			h = 0.4
		}
		for _, cx := range []float64{inset, pw - inset} {
			for _, cy := range []float64{inset, pw - inset} {
				dx, dy := lx-cx, ly-cy
				d := math.Hypot(dx, dy)
				if d < rivetR {
					nz := math.Sqrt(math.Max(0, 1-d*d/(rivetR*rivetR)))
					lit := (-dx-dy)/(rivetR*1.41) + nz
					c = rgb{0.55, 0.55, 0.57}.scale(0.55 + 0.5*lit)
					h = 0.8 + 0.2*nz
				} else if d < rivetR+1.2 {
					c = c.scale(0.45)
				}
			}
		}
		cv.set(i, c)
		cv.ht[i] = h
	})
}

func paintTiles(cv *canvas, seed uint64) {
	s := float64(cv.s)
	const n = 4
	tw := s / n
	grout := math.Max(2, s*3.5/128)
	cv.each(func(i int, u, v float64) {
		tx, ty := int(u*n), int(v*n)
		lx, ly := fract(u*n)*tw, fract(v*n)*tw
		edge := math.Min(math.Min(lx, tw-lx), math.Min(ly, tw-ly))
		nn := fbm(u, v, 12, 12, 3, 0.5, seed+1)
		if edge < grout/2 {
			l := 0.4 + 0.05*nn + 0.04*grain(i, seed)
			cv.set(i, rgb{l, l * 0.97, l * 0.92})
			cv.ht[i] = 0.1
			return
		}
		id := hash2(tx, ty, seed)
		// Glazes vary from tile to tile.
		k := 0.8 + 0.24*hashf(id)
		base := rgb{0.86, 0.84, 0.79}
		// Glaze: a soft sheen across each tile and a rounded edge.
		sheen := 0.05 * math.Sin(math.Pi*lx/tw) * math.Sin(math.Pi*ly/tw)
		bevel := 0.82 + 0.18*smoothstep(grout/2, grout/2+2.5, edge)
		c := base.scale(k * bevel * (1 + sheen + 0.03*nn + 0.015*grain(i, seed)))
		cv.set(i, c)
		cv.ht[i] = 0.7
	})
}

func paintFabric(cv *canvas, seed uint64) {
	s := float64(cv.s)
	threads := 32.0 // across the exemplar
	tw := s / threads
	cv.each(func(i int, u, v float64) {
		x, y := u*threads, v*threads
		ix, iy := int(x), int(y)
		lx, ly := fract(x), fract(y)
		overWarp := (ix+iy)%2 == 0
		var across, along float64
		var c rgb
		warpC, weftC := rgb{0.74, 0.67, 0.54}, rgb{0.68, 0.61, 0.49}
		if overWarp {
			across, along = lx, ly
			c = warpC
		} else {
			across, along = ly, lx
			c = weftC
		}
		profile := math.Sqrt(math.Max(0, math.Sin(math.Pi*across)))
		dip := 0.75 + 0.25*math.Sin(math.Pi*along)
		fib := fbm(u, v, 4, 64, 2, 0.5, seed)
		if !overWarp {
			fib = fbm(u, v, 64, 4, 2, 0.5, seed+1)
		}
		slub := fbm(u, v, 2, 2, 3, 0.5, seed+2)
		l := (0.35 + 0.7*profile*dip) * (1 + 0.08*fib + 0.06*slub + 0.03*grain(i, seed))
		_ = tw
		cv.set(i, c.scale(l))
		cv.ht[i] = profile * dip
	})
}

func paintFire(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		wx := 0.08 * fbm(u, v, 3, 2, 3, 0.5, seed)
		n := fbm(fract(u+wx), v, 6, 2, 5, 0.55, seed+1)
		t := fbm(u, v, 12, 4, 3, 0.5, seed+2)
		heat := smoothstep(-0.35, 0.55, n+0.35*t)
		cv.set(i, fireRamp(heat))
		cv.ht[i] = heat
	})
}

func paintSmoke(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		wu, wv := warped(u, v, 0.15, 2, seed)
		n := fbm(wu, wv, 3, 3, 6, 0.55, seed+1)
		d := smoothstep(-0.35, 0.55, n)
		c := mix(rgb{0.10, 0.10, 0.12}, rgb{0.72, 0.72, 0.74}, d)
		cv.set(i, c)
		cv.ht[i] = d
	})
}

func paintMarble(cv *canvas, seed uint64) {
	cv.each(func(i int, u, v float64) {
		// Veining as broad, strongly warped bands (like sand ripples,
		// which the denoiser keeps well), each with a darker core.
		w := fbm(u, v, 2, 2, 5, 0.55, seed)
		t := u*2 + v*2 + 1.3*w
		d := math.Abs(math.Sin(math.Pi * t))
		band := 1 - smoothstep(0.15, 0.55, d)
		core := 1 - smoothstep(0.02, 0.16, d)
		cloud := fbm(u, v, 3, 3, 4, 0.5, seed+2)
		c := mix(rgb{0.95, 0.94, 0.91}, rgb{0.84, 0.84, 0.83}, clamp(0.5+cloud, 0, 1))
		c = mix(c, rgb{0.60, 0.61, 0.64}, 0.7*band)
		c = mix(c, rgb{0.28, 0.29, 0.33}, 0.8*core)
		c = c.scale(1 + 0.015*grain(i, seed))
		cv.set(i, c)
		cv.ht[i] = 0.6
	})
}
