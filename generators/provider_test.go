package generators

import "testing"

func TestProviderClass(t *testing.T) {
	trt := func(kv ...string) map[string]map[string]string {
		o := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i]] = kv[i+1]
		}
		return map[string]map[string]string{"tensorrt": o}
	}
	tests := []struct {
		provider string
		opts     map[string]map[string]string
		want     string
	}{
		{"", nil, "cpu"},
		{"cpu", nil, "cpu"},
		{" CUDA ", nil, "cuda"},
		{"cuda", trt("trt_fp16_enable", "0"), "cuda"},
		{"tensorrt", nil, "tensorrt-fp16"},
		{"tensorrt", trt("trt_fp16_enable", "1"), "tensorrt-fp16"},
		{"tensorrt", trt("trt_fp16_enable", "0"), "tensorrt-fp32"},
		{"tensorrt", trt("trt_fp16_enable", "false"), "tensorrt-fp32"},
		{"tensorrt", trt("trt_int8_enable", "1"), "tensorrt-int8"},
		{"tensorrt", trt("trt_engine_cache_enable", "0"), "tensorrt-fp16"},
		{"coreml", nil, "coreml"},
		{"directml", nil, "directml"},
		{"openvino", nil, "openvino"},
	}
	for _, tc := range tests {
		if got := providerClass(tc.provider, tc.opts); got != tc.want {
			t.Errorf("providerClass(%q, %v) = %q, want %q", tc.provider, tc.opts, got, tc.want)
		}
	}
}
