package manifests

import (
	"reflect"
	"strings"
	"testing"
)

// runtimeConfig is baseConfig with a runtime: block.
func runtimeConfig(block string) map[string]string {
	return map[string]string{ConfigFile: baseConfig + "runtime:\n" + block}
}

func TestRuntimeSpinning(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		block string
		want  *bool
	}{
		{"  threads: 2\n", nil},
		{"  spinning: true\n", &yes},
		{"  spinning: false\n", &no},
	}
	for _, tt := range tests {
		p := mustLoad(t, runtimeConfig(tt.block))
		if got := p.Config.Runtime.Spinning; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: Spinning = %v, want %v", tt.block, got, tt.want)
		}
	}
	lines := errLines(t, runtimeConfig("  spinning: sometimes\n"))
	want := `kiln.yaml:8:13: runtime.spinning: expected true or false, got "sometimes"`
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(lines, "\n"), want)
	}
}

func TestRuntimeProviderOptions(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  map[string]map[string]string
	}{
		{"none", "  device: cuda\n", nil},
		{"cuda", "  provider_options:\n    cuda:\n      cudnn_conv_algo_search: HEURISTIC\n      enable_cuda_graph: false\n      do_copy_in_default_stream: 1\n      gpu_mem_limit: 6GiB\n      tunable_op_max_tuning_duration_ms: \"250\"\n",
			map[string]map[string]string{"cuda": {
				"cudnn_conv_algo_search":            "HEURISTIC",
				"enable_cuda_graph":                 "0",
				"do_copy_in_default_stream":         "1",
				"gpu_mem_limit":                     "6442450944",
				"tunable_op_max_tuning_duration_ms": "250",
			}}},
		{"both", "  provider_options: {tensorrt: {trt_fp16_enable: \"0\", trt_builder_optimization_level: 5, trt_auxiliary_streams: -1, trt_engine_cache_path: /fast/trt}, cuda: {prefer_nhwc: true}}\n",
			map[string]map[string]string{
				"tensorrt": {"trt_fp16_enable": "0", "trt_builder_optimization_level": "5", "trt_auxiliary_streams": "-1", "trt_engine_cache_path": "/fast/trt"},
				"cuda":     {"prefer_nhwc": "1"},
			}},
		{"empty block", "  provider_options: {cuda: {}}\n", map[string]map[string]string{"cuda": {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustLoad(t, runtimeConfig(tt.block))
			if got := p.Config.Runtime.ProviderOptions; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ProviderOptions = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRuntimeProviderOptionErrors(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  []string
	}{
		{"unknown key", "  provider_options:\n    cuda:\n      cudnn_conv_algo_serch: HEURISTIC\n",
			[]string{`kiln.yaml:10:7: runtime.provider_options.cuda.cudnn_conv_algo_serch: unknown field "cudnn_conv_algo_serch" (did you mean "cudnn_conv_algo_search"?)`}},
		{"unknown provider", "  provider_options:\n    cudaa: {}\n",
			[]string{`kiln.yaml:9:5: runtime.provider_options.cudaa: unknown field "cudaa" (did you mean "cuda"?)`}},
		{"bad enum", "  provider_options:\n    cuda: {arena_extend_strategy: kSameAsRequest}\n",
			[]string{`kiln.yaml:9:35: runtime.provider_options.cuda.arena_extend_strategy: expected one of kNextPowerOfTwo, kSameAsRequested, got "kSameAsRequest" (did you mean "kSameAsRequested"?)`}},
		{"bad bool", "  provider_options:\n    tensorrt: {trt_fp16_enable: 2}\n",
			[]string{`kiln.yaml:9:33: runtime.provider_options.tensorrt.trt_fp16_enable: must be between 0 and 1, got 2`}},
		{"bad integer", "  provider_options:\n    tensorrt: {trt_min_subgraph_size: \"many\"}\n",
			[]string{`kiln.yaml:9:39: runtime.provider_options.tensorrt.trt_min_subgraph_size: expected a non-negative integer, got "many"`}},
		{"refused profile", "  provider_options:\n    tensorrt: {trt_profile_min_shapes: \"sample:1x4x64x64\"}\n",
			[]string{`kiln.yaml:9:40: runtime.provider_options.tensorrt.trt_profile_min_shapes: tensorrt provider option trt_profile_min_shapes cannot be set (kiln sets the optimisation profiles of each graph from the image sizes the project uses)`}},
		{"refused device", "  provider_options:\n    cuda: {device_id: 1}\n",
			[]string{`kiln.yaml:9:23: runtime.provider_options.cuda.device_id: cuda provider option device_id cannot be set (set runtime.device_id (or --device-id) instead)`}},
		{"tensorrt key under cuda", "  provider_options:\n    cuda: {trt_fp16_enable: 1}\n",
			[]string{`kiln.yaml:9:12: runtime.provider_options.cuda.trt_fp16_enable: unknown field "trt_fp16_enable" (expected one of: ` + joinNames(fieldNamesOf("cuda")) + `)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errLines(t, runtimeConfig(tt.block))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// fieldNamesOf lists provider_options.<provider>'s fields in table order.
func fieldNamesOf(provider string) []string {
	var n []string
	for _, o := range providerOptionTable(provider) {
		n = append(n, o.name)
	}
	return n
}

func TestProviderOptionKeys(t *testing.T) {
	for _, provider := range []string{"cuda", "tensorrt"} {
		keys := ProviderOptionKeys(provider)
		seen := map[string]bool{}
		for _, o := range providerOptionTable(provider) {
			if seen[o.name] {
				t.Errorf("%s: option %s listed twice", provider, o.name)
			}
			seen[o.name] = true
		}
		for _, k := range keys {
			if !seen[k] {
				t.Errorf("%s: key %s not in the table", provider, k)
			}
		}
		if len(keys) == 0 {
			t.Errorf("%s: no keys", provider)
		}
	}
	if ProviderOptionKeys("openvino") != nil {
		t.Error("openvino has keys")
	}
}
