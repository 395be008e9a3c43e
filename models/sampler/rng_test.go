package sampler

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"
)

type randnRef struct {
	Torch string `json:"torch"`
	Cases []struct {
		Name  string `json:"name"`
		Seed  uint64 `json:"seed"`
		Draws []struct {
			Shape []int64   `json:"shape"`
			N     int       `json:"n"`
			CRC   uint32    `json:"crc32"`
			Head  []float64 `json:"head"`
			Tail  []float64 `json:"tail"`
			Sum   float64   `json:"sum"`
		} `json:"draws"`
	} `json:"cases"`
}

func loadRandnRef(t testing.TB) randnRef {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "randn.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref randnRef
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

func crcOf(v []float32) uint32 {
	buf := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
	}
	return crc32.ChecksumIEEE(buf)
}

// TestRandnMatchesTorch compares Generator.Randn with torch.randn on a
// seeded CPU generator (testdata/randn.json, written by gen_randn.py), bit
// for bit: small tensors (scalar path with the cached second sample),
// tensors of 16 and more (vectorised path, including sizes that are not a
// multiple of 16), SD and SDXL latent shapes, 64-bit seeds, and sequences
// of draws as diffusers makes them.
func TestRandnMatchesTorch(t *testing.T) {
	ref := loadRandnRef(t)
	if len(ref.Cases) == 0 {
		t.Fatal("no reference cases")
	}
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			g := NewGenerator(c.Seed)
			for i, d := range c.Draws {
				got := g.Randn(d.Shape...)
				if len(got.Data) != d.N {
					t.Fatalf("draw %d: %d values, want %d", i, len(got.Data), d.N)
				}
				bad := 0
				for k, want := range d.Head {
					if got.Data[k] != float32(want) {
						bad++
						if bad <= 5 {
							t.Errorf("draw %d %v: value %d = %.9g, want %.9g", i, d.Shape, k, got.Data[k], want)
						}
					}
				}
				off := len(got.Data) - len(d.Tail)
				for k, want := range d.Tail {
					if got.Data[off+k] != float32(want) {
						bad++
						if bad <= 5 {
							t.Errorf("draw %d %v: value %d = %.9g, want %.9g", i, d.Shape, off+k, got.Data[off+k], want)
						}
					}
				}
				if crc := crcOf(got.Data); crc != d.CRC {
					var sum float64
					for _, v := range got.Data {
						sum += float64(v)
					}
					t.Errorf("draw %d %v: CRC %08x, want %08x (sum %.9g, want %.9g)", i, d.Shape, crc, d.CRC, sum, d.Sum)
				}
			}
		})
	}
}

func TestFillNormalDoesNotAllocate(t *testing.T) {
	g := NewGenerator(1)
	buf := make([]float32, 4*64*64)
	if n := testing.AllocsPerRun(10, func() { g.FillNormal(buf) }); n != 0 {
		t.Errorf("FillNormal allocates %v times per call", n)
	}
}

func TestFMA32(t *testing.T) {
	ulp := math.Ldexp(1, -23)
	tests := []struct {
		name    string
		a, b, c float64
		want    float64
	}{
		{"exact", 1, 1, 0, 1},
		{"ordinary", 0.1, 0.2, 0.3, float64(float32(math.FMA(float64(float32(0.1)), float64(float32(0.2)), float64(float32(0.3)))))},
		// a*b = 2^-24 - 2^-70, so the exact sum lies just below the
		// midpoint between 1+2^-23 and 1+2^-22; float64 rounds it onto
		// the midpoint, and a second rounding (ties to even) would go up.
		{"double rounding", math.Ldexp(1+ulp, -24), 1 - ulp, 1 + ulp, 1 + ulp},
		{"double rounding negative", -math.Ldexp(1+ulp, -24), 1 - ulp, -(1 + ulp), -(1 + ulp)},
	}
	for _, tt := range tests {
		got := fma32(float32(tt.a), float32(tt.b), float32(tt.c))
		if float64(got) != tt.want {
			t.Errorf("%s: fma32 = %.10g, want %.10g", tt.name, got, tt.want)
		}
	}
}

func BenchmarkRandn512(b *testing.B) {
	g := NewGenerator(42)
	buf := make([]float32, 4*64*64)
	b.SetBytes(int64(4 * len(buf)))
	for b.Loop() {
		g.FillNormal(buf)
	}
}
