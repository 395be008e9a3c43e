package gltf

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"
)

type vec3 [3]float64

func v3(a [3]float32) vec3          { return vec3{float64(a[0]), float64(a[1]), float64(a[2])} }
func (a vec3) sub(b vec3) vec3      { return vec3{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func (a vec3) add(b vec3) vec3      { return vec3{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }
func (a vec3) scale(s float64) vec3 { return vec3{a[0] * s, a[1] * s, a[2] * s} }
func (a vec3) dot(b vec3) float64   { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
func (a vec3) len() float64         { return math.Sqrt(a.dot(a)) }
func (a vec3) unit() vec3           { return a.scale(1 / a.len()) }
func (a vec3) cross(b vec3) vec3 {
	return vec3{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

// checkTangentSpace checks a triangle mesh numerically: unit normals and
// tangents, tangents orthogonal to normals, w = ±1; and per triangle a
// counter-clockwise winding that agrees with the normals, a tangent that
// points along increasing u, and a handedness w that makes
// cross(normal, tangent)·w point along decreasing v, where glTF's +Y
// (OpenGL) normal maps store "up".
func checkTangentSpace(t *testing.T, pos, nrm [][3]float32, tan [][4]float32, uv [][2]float32, idx []uint32) {
	t.Helper()
	const eps = 1e-6
	n := len(pos)
	if len(nrm) != n || len(tan) != n || len(uv) != n {
		t.Fatalf("attribute counts differ: %d positions, %d normals, %d tangents, %d texcoords", n, len(nrm), len(tan), len(uv))
	}
	if len(idx)%3 != 0 || len(idx) == 0 {
		t.Fatalf("%d indices is not a triangle list", len(idx))
	}
	bad := 0
	fail := func(format string, args ...any) {
		bad++
		if bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for i := 0; i < n; i++ {
		nv, tv := v3(nrm[i]), vec3{float64(tan[i][0]), float64(tan[i][1]), float64(tan[i][2])}
		if d := math.Abs(nv.len() - 1); d > eps {
			fail("vertex %d: |normal| = %v", i, nv.len())
		}
		if d := math.Abs(tv.len() - 1); d > eps {
			fail("vertex %d: |tangent| = %v", i, tv.len())
		}
		if d := math.Abs(nv.dot(tv)); d > eps {
			fail("vertex %d: normal·tangent = %v, want 0", i, d)
		}
		if w := tan[i][3]; w != 1 && w != -1 {
			fail("vertex %d: tangent w = %v, want ±1", i, w)
		}
	}
	for k := 0; k < len(idx); k += 3 {
		a, b, c := idx[k], idx[k+1], idx[k+2]
		if int(a) >= n || int(b) >= n || int(c) >= n {
			t.Fatalf("triangle %d: index out of range", k/3)
		}
		p0, p1, p2 := v3(pos[a]), v3(pos[b]), v3(pos[c])
		e1, e2 := p1.sub(p0), p2.sub(p0)
		geo := e1.cross(e2)
		if geo.len() < 1e-9 {
			fail("triangle %d is degenerate", k/3)
			continue
		}
		du1, dv1 := float64(uv[b][0]-uv[a][0]), float64(uv[b][1]-uv[a][1])
		du2, dv2 := float64(uv[c][0]-uv[a][0]), float64(uv[c][1]-uv[a][1])
		det := du1*dv2 - du2*dv1
		if math.Abs(det) < 1e-12 {
			fail("triangle %d has a degenerate UV mapping", k/3)
			continue
		}
		dPdu := e1.scale(dv2).sub(e2.scale(dv1)).scale(1 / det)
		dPdv := e2.scale(du1).sub(e1.scale(du2)).scale(1 / det)
		for _, v := range []uint32{a, b, c} {
			nv := v3(nrm[v])
			tv := vec3{float64(tan[v][0]), float64(tan[v][1]), float64(tan[v][2])}
			if geo.unit().dot(nv) <= 0.9 {
				fail("triangle %d: winding disagrees with the normal of vertex %d (cos %v)", k/3, v, geo.unit().dot(nv))
			}
			if cos := dPdu.unit().dot(tv); cos < 0.95 {
				fail("triangle %d: tangent of vertex %d is %v from ∂P/∂u (cos %v)", k/3, v, tv, cos)
			}
			up := nv.cross(tv).scale(float64(tan[v][3]))
			if cos := up.dot(dPdv.scale(-1).unit()); cos < 0.95 {
				fail("triangle %d: bitangent of vertex %d (w = %v) does not point along -∂P/∂v (cos %v)", k/3, v, tan[v][3], cos)
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d problems in all", bad)
	}
}

func TestSineTable(t *testing.T) {
	for j, s := range sin32 {
		if d := math.Abs(s - math.Sin(float64(j)*math.Pi/32)); d > 2e-16 {
			t.Errorf("sin32[%d] = %v differs from math.Sin by %g", j, s, d)
		}
	}
	// math.Sincos sees kπ/32 rounded, an error that grows with |k|.
	for k := -70; k <= 140; k++ {
		s, c := sincos(k)
		ws, wc := math.Sincos(float64(k) * math.Pi / 32)
		if math.Abs(s-ws) > 5e-15 || math.Abs(c-wc) > 5e-15 {
			t.Errorf("sincos(%d) = %v, %v; math.Sincos gives %v, %v", k, s, c, ws, wc)
		}
	}
}

func TestPreviewMeshes(t *testing.T) {
	tests := []struct {
		preview   Preview
		vertices  int
		triangles int
		area      float64 // exact surface area of the ideal shape
		areaTol   float64
		closed    bool
	}{
		{PreviewPlane, 4, 2, 4, 1e-12, false},
		{PreviewCube, 24, 12, 24, 1e-12, true},
		// 32×16 facets lose about 1% of the sphere's area.
		{PreviewSphere, 2*32 + 15*33, 2*32 + 14*32*2, 4 * math.Pi, 0.02, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.preview), func(t *testing.T) {
			m, err := previewMesh(tt.preview)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.position) != tt.vertices || len(m.indices) != 3*tt.triangles {
				t.Fatalf("%d vertices, %d triangles; want %d, %d", len(m.position), len(m.indices)/3, tt.vertices, tt.triangles)
			}
			idx := make([]uint32, len(m.indices))
			for i, v := range m.indices {
				idx[i] = uint32(v)
			}
			checkTangentSpace(t, m.position, m.normal, m.tangent, m.texcoord, idx)

			var area float64
			for k := 0; k < len(idx); k += 3 {
				p0, p1, p2 := v3(m.position[idx[k]]), v3(m.position[idx[k+1]]), v3(m.position[idx[k+2]])
				area += p1.sub(p0).cross(p2.sub(p0)).len() / 2
			}
			if rel := math.Abs(area-tt.area) / tt.area; rel > tt.areaTol {
				t.Errorf("surface area %v, want %v (±%v)", area, tt.area, tt.areaTol*tt.area)
			}
			for i, p := range m.position {
				for _, c := range p {
					if c < -1 || c > 1 {
						t.Fatalf("vertex %d at %v is outside [-1, 1]³", i, p)
					}
				}
				for _, c := range m.texcoord[i] {
					if c < 0 || c > 1 {
						t.Fatalf("vertex %d has UV %v outside [0, 1]", i, m.texcoord[i])
					}
				}
				// Closed shapes centred on the origin face outwards.
				if tt.closed && v3(p).dot(v3(m.normal[i])) <= 0 {
					t.Errorf("vertex %d: normal %v points inwards at %v", i, m.normal[i], p)
				}
			}
			if tt.closed {
				// Every edge of a closed surface is shared by two
				// triangles in opposite directions (positions, not
				// indices, because UV seams duplicate vertices).
				type edge [2][3]float32
				count := map[edge]int{}
				for k := 0; k < len(idx); k += 3 {
					for e := 0; e < 3; e++ {
						a, b := m.position[idx[k+e]], m.position[idx[k+(e+1)%3]]
						count[edge{a, b}]++
					}
				}
				for e, c := range count {
					if c != 1 || count[edge{e[1], e[0]}] != 1 {
						t.Fatalf("edge %v is used %d times and reversed %d times: the surface is not closed and consistently wound", e, c, count[edge{e[1], e[0]}])
					}
				}
			}
		})
	}
}

// TestPreviewMeshBytes pins the preview meshes' bytes, so a change of
// platform, compiler or code that moves a single bit fails here.
func TestPreviewMeshBytes(t *testing.T) {
	want := map[Preview]string{
		PreviewPlane:  "cf692f261b0dfe974435c1c69cae7ab1c351f6b672f6334ea1981f92b872523c",
		PreviewCube:   "93e53655522435e779203ee7b21a0b94316f82dc98977fd8a8a8a3bf4338d64d",
		PreviewSphere: "cbf50e2ac8ce1af8b68a07c01da57efb70e454401ea79516e441749c7f24ed2c",
	}
	for p, hash := range want {
		m, err := previewMesh(p)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		for _, data := range []any{m.position, m.normal, m.tangent, m.texcoord, m.indices} {
			if err := binary.Write(h, binary.LittleEndian, data); err != nil {
				t.Fatal(err)
			}
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != hash {
			t.Errorf("%s mesh: sha256 %s, want %s", p, got, hash)
		}
	}
}
