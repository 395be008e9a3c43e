package gltf

import "fmt"

// Preview names the mesh a material is shown on, so that the exported file
// opens in any viewer with something to look at.
type Preview string

// The preview meshes. Every mesh spans [-1, 1] on each axis it extends along
// and is mapped so that the whole texture covers each face once (before any
// Repeat): u grows to the right and v grows downwards as the face is seen from
// outside, the glTF convention.
const (
	// PreviewPlane is a 2×2 quad in the XY plane facing +Z (towards a
	// viewer's default camera), the clearest view of a tileable texture.
	PreviewPlane Preview = "plane"
	// PreviewCube is a 2×2×2 cube with the whole texture on each face.
	PreviewCube Preview = "cube"
	// PreviewSphere is a UV sphere of radius 1 (32 segments, 16 rings)
	// with the texture seam at the back (-Z).
	PreviewSphere Preview = "sphere"
)

// mesh is a triangle list with the vertex attributes glTF wants for
// normal-mapped PBR shading.
type mesh struct {
	position [][3]float32
	normal   [][3]float32
	// tangent.xyz points along increasing u; w is the handedness such that
	// cross(normal, tangent.xyz)*w points along decreasing v ("up" in the
	// image), which is where glTF's OpenGL-convention (+Y) normal maps put
	// their green channel.
	tangent  [][4]float32
	texcoord [][2]float32
	indices  []uint16
}

func previewMesh(p Preview) (*mesh, error) {
	switch p {
	case PreviewPlane:
		return planeMesh(), nil
	case PreviewCube:
		return cubeMesh(), nil
	case PreviewSphere:
		return sphereMesh(), nil
	}
	return nil, fmt.Errorf("preview %q is not a preview mesh: use %q, %q or %q", p, PreviewPlane, PreviewCube, PreviewSphere)
}

// vertex appends one vertex.
func (m *mesh) vertex(p, n [3]float64, t [3]float64, u, v float64) {
	m.position = append(m.position, f32x3(p))
	m.normal = append(m.normal, f32x3(n))
	m.tangent = append(m.tangent, [4]float32{float32(t[0]), float32(t[1]), float32(t[2]), 1})
	m.texcoord = append(m.texcoord, [2]float32{float32(u), float32(v)})
}

func f32x3(v [3]float64) [3]float32 {
	return [3]float32{float32(v[0]), float32(v[1]), float32(v[2])}
}

// face appends a unit square centred on n, spanned by t (towards +u) and up
// (towards -v), as two counter-clockwise triangles seen from the side n
// points to. The caller passes up = cross(n, t) so the handedness is +1.
func (m *mesh) face(center, n, t, up [3]float64) {
	base := uint16(len(m.position))
	corner := func(su, sv float64) [3]float64 {
		// Each component is a sum of values that are all exactly 0 or ±1,
		// so the result is exact and identical on every platform.
		return [3]float64{
			center[0] + su*t[0] + sv*up[0],
			center[1] + su*t[1] + sv*up[1],
			center[2] + su*t[2] + sv*up[2],
		}
	}
	m.vertex(corner(-1, 1), n, t, 0, 0)  // top left
	m.vertex(corner(-1, -1), n, t, 0, 1) // bottom left
	m.vertex(corner(1, -1), n, t, 1, 1)  // bottom right
	m.vertex(corner(1, 1), n, t, 1, 0)   // top right
	m.indices = append(m.indices, base, base+1, base+2, base, base+2, base+3)
}

func planeMesh() *mesh {
	m := &mesh{}
	m.face([3]float64{0, 0, 0}, [3]float64{0, 0, 1}, [3]float64{1, 0, 0}, [3]float64{0, 1, 0})
	return m
}

func cubeMesh() *mesh {
	m := &mesh{}
	// normal, tangent (+u), up (-v) with up = cross(normal, tangent): each
	// face reads upright from outside; the top face has its far edge up and
	// the bottom face its near edge up.
	faces := [6][3][3]float64{
		{{0, 0, 1}, {1, 0, 0}, {0, 1, 0}},   // front +Z
		{{1, 0, 0}, {0, 0, -1}, {0, 1, 0}},  // right +X
		{{0, 0, -1}, {-1, 0, 0}, {0, 1, 0}}, // back -Z
		{{-1, 0, 0}, {0, 0, 1}, {0, 1, 0}},  // left -X
		{{0, 1, 0}, {1, 0, 0}, {0, 0, -1}},  // top +Y
		{{0, -1, 0}, {1, 0, 0}, {0, 0, 1}},  // bottom -Y
	}
	for _, f := range faces {
		m.face(f[0], f[0], f[1], f[2])
	}
	return m
}

// Sphere resolution: every vertex angle is a multiple of π/32, so the sphere
// needs only the sine table below.
const (
	sphereSegments = 32 // around the Y axis, 2π/32 = 2·π/32 apart
	sphereRings    = 16 // pole to pole, π/16 = 2·π/32 apart
)

// sin32 holds sin(jπ/32) for j = 0…16, correctly rounded from 40-digit
// values. Using a table instead of math.Sin makes the sphere's bytes
// identical on every platform: math.Sin is pure Go whose inner
// multiply-adds the compiler may fuse on some architectures (arm64,
// GOAMD64=v3), which can change the last bit. The vertex formulas below
// only multiply table values, and a lone product is always correctly
// rounded, so no fusion can occur.
var sin32 = [17]float64{
	0,
	0.0980171403295606019941955638886,
	0.1950903220161282678482848684770,
	0.2902846772544623676361923758174,
	0.3826834323650897717284599840304,
	0.4713967368259976485563876259053,
	0.5555702330196022247428308139485,
	0.6343932841636454982151716132255,
	0.7071067811865475244008443621048,
	0.7730104533627369608109066097585,
	0.8314696123025452370787883776179,
	0.8819212643483550297127568636604,
	0.9238795325112867561281831893968,
	0.9569403357322088649357978869803,
	0.9807852804032304491261822361342,
	0.9951847266721968862448369531095,
	1,
}

// sincos returns sin and cos of kπ/32 for any integer k, from sin32.
func sincos(k int) (s, c float64) {
	k %= 64
	if k < 0 {
		k += 64
	}
	switch {
	case k <= 16:
		return sin32[k], sin32[16-k]
	case k <= 32:
		return sin32[32-k], -sin32[k-16]
	case k <= 48:
		return -sin32[k-32], -sin32[48-k]
	default:
		return -sin32[64-k], sin32[k-48]
	}
}

// sphereMesh builds a UV sphere of radius 1. Longitude φ runs from -π at
// u = 0 through 0 (facing +Z) to π at u = 1, so the seam is at the back;
// colatitude θ runs from 0 at the north pole (v = 0) to π at the south pole
// (v = 1). Position = normal = (sinθ sinφ, cosθ, sinθ cosφ); the tangent is
// ∂/∂φ normalised, (cosφ, 0, -sinφ). Each pole is one vertex per segment
// (at the segment's middle longitude) so no triangle is degenerate.
func sphereMesh() *mesh {
	m := &mesh{}
	const (
		ringStep = 64 / 2 / sphereRings          // θ step in π/32 units
		segStep  = 64 / sphereSegments           // φ step in π/32 units
		phi0     = -sphereSegments * segStep / 2 // φ at u = 0 in π/32 units
	)
	point := func(ti, pk int, u, v float64) {
		st, ct := sincos(ti)
		sp, cp := sincos(pk)
		n := [3]float64{st * sp, ct, st * cp}
		m.vertex(n, n, [3]float64{cp, 0, -sp}, u, v)
	}
	// North pole: one vertex per segment.
	for j := 0; j < sphereSegments; j++ {
		point(0, phi0+j*segStep+segStep/2, (float64(j)+0.5)/sphereSegments, 0)
	}
	// Rings 1…rings-1, each with a duplicated seam vertex (u = 0 and u = 1).
	for i := 1; i < sphereRings; i++ {
		for j := 0; j <= sphereSegments; j++ {
			point(i*ringStep, phi0+j*segStep, float64(j)/sphereSegments, float64(i)/sphereRings)
		}
	}
	// South pole.
	for j := 0; j < sphereSegments; j++ {
		point(sphereRings*ringStep, phi0+j*segStep+segStep/2, (float64(j)+0.5)/sphereSegments, 1)
	}
	ring := func(i, j int) uint16 { // vertex index on inner ring i (1-based)
		return uint16(sphereSegments + (i-1)*(sphereSegments+1) + j)
	}
	south := uint16(sphereSegments + (sphereRings-1)*(sphereSegments+1))
	for j := 0; j < sphereSegments; j++ {
		// Counter-clockwise seen from outside: down the sphere is -v,
		// along the segment is +u.
		m.indices = append(m.indices, uint16(j), ring(1, j), ring(1, j+1))
		for i := 1; i < sphereRings-1; i++ {
			a, b, c, d := ring(i, j), ring(i+1, j), ring(i+1, j+1), ring(i, j+1)
			m.indices = append(m.indices, a, b, c, a, c, d)
		}
		i := sphereRings - 1
		m.indices = append(m.indices, ring(i, j), south+uint16(j), ring(i, j+1))
	}
	return m
}
