package gltf

import "testing"

// benchMaterial is a full 1024² PBR set (base colour, ORM, normal,
// emissive) on the sphere, with images given as PNG bytes or as images.
func benchMaterial(b *testing.B, asImages bool) Material {
	tex := func(seed int) *Texture {
		img := testImage(1024, seed)
		if asImages {
			return &Texture{Image: img}
		}
		return &Texture{PNG: encodePNG(b, img)}
	}
	orm := tex(2)
	return Material{
		BaseColor: tex(1), MetallicRoughness: orm, Occlusion: orm,
		Normal: tex(3), Emissive: tex(4), EmissiveStrength: 2,
		Tileable: true, Repeat: [2]float64{2, 2}, Preview: PreviewSphere,
	}
}

func BenchmarkEncodeGLB(b *testing.B) {
	for _, bc := range []struct {
		name     string
		asImages bool
	}{{"png-bytes", false}, {"images", true}} {
		b.Run(bc.name, func(b *testing.B) {
			m := benchMaterial(b, bc.asImages)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := EncodeGLB(m, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeGLTF(b *testing.B) {
	m := benchMaterial(b, false)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := EncodeGLTF("bench", m, nil); err != nil {
			b.Fatal(err)
		}
	}
}
