package models

import (
	"maps"
	"reflect"
	"strings"
	"testing"
)

func TestCUDAOptions(t *testing.T) {
	defaults := map[string]string{
		"device_id":                    "0",
		"cudnn_conv_algo_search":       "EXHAUSTIVE",
		"arena_extend_strategy":        "kSameAsRequested",
		"do_copy_in_default_stream":    "1",
		"cudnn_conv_use_max_workspace": "1",
		"enable_cuda_graph":            "0",
	}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(defaults)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		device int
		budget int64
		user   map[string]string
		want   map[string]string
	}{
		{"defaults", 0, 0, nil, defaults},
		{"device 1", 1, 0, nil, with("device_id", "1")},
		{"memory budget", 0, 4 << 30, nil, with("gpu_mem_limit", "4294967296")},
		{"overrides", 0, 4 << 30, map[string]string{"cudnn_conv_algo_search": "HEURISTIC", "gpu_mem_limit": "1024", "prefer_nhwc": "true"},
			with("cudnn_conv_algo_search", "HEURISTIC", "gpu_mem_limit", "1024", "prefer_nhwc", "1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := checkProviderOptions(ProviderCUDA, tt.user)
			if err != nil {
				t.Fatal(err)
			}
			r := &Runtime{deviceID: tt.device, budget: tt.budget, provOpts: map[string]map[string]string{ProviderCUDA: user}}
			if got := r.cudaOptions(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("cuda options:\n%v\nwant:\n%v", got, tt.want)
			}
		})
	}
}

func TestCheckProviderOptions(t *testing.T) {
	tests := []struct {
		provider string
		in       map[string]string
		want     map[string]string
		err      string
	}{
		{ProviderCUDA, map[string]string{"enable_cuda_graph": "False", "use_tf32": "1", "sdpa_kernel": "2"},
			map[string]string{"enable_cuda_graph": "0", "use_tf32": "1", "sdpa_kernel": "2"}, ""},
		{ProviderTensorRT, map[string]string{"trt_auxiliary_streams": "-1", "trt_op_types_to_exclude": ""},
			map[string]string{"trt_auxiliary_streams": "-1", "trt_op_types_to_exclude": ""}, ""},
		{ProviderOpenVINO, map[string]string{"device_type": "GPU.1", "anything": "goes"},
			map[string]string{"device_type": "GPU.1", "anything": "goes"}, ""},
		{ProviderCUDA, map[string]string{"cudnn_conv_algo_serch": "HEURISTIC"}, nil,
			`unknown cuda provider option "cudnn_conv_algo_serch": did you mean "cudnn_conv_algo_search"?`},
		{ProviderCUDA, map[string]string{"colour": "blue"}, nil,
			`unknown cuda provider option "colour": see ONNX Runtime's cuda provider documentation`},
		{ProviderCUDA, map[string]string{"cudnn_conv_algo_search": "exhaustive"}, nil,
			`cuda provider option cudnn_conv_algo_search: "exhaustive" is not a valid value: use one of EXHAUSTIVE, HEURISTIC, DEFAULT`},
		{ProviderCUDA, map[string]string{"arena_extend_strategy": "kSameAsRequest"}, nil,
			`cuda provider option arena_extend_strategy: "kSameAsRequest" is not a valid value: did you mean "kSameAsRequested"?`},
		{ProviderTensorRT, map[string]string{"trt_fp16_enable": "yes"}, nil,
			`tensorrt provider option trt_fp16_enable: "yes" is not a boolean: use 0 or 1`},
		{ProviderTensorRT, map[string]string{"trt_max_workspace_size": "-5"}, nil,
			`tensorrt provider option trt_max_workspace_size: "-5" is not a non-negative integer`},
		{ProviderTensorRT, map[string]string{"trt_profile_opt_shapes": "sample:2x4x64x64"}, nil,
			`tensorrt provider option "trt_profile_opt_shapes" cannot be set: kiln sets the optimisation profiles of each graph from the image sizes the project uses`},
		{ProviderTensorRT, map[string]string{"device_id": "1"}, nil,
			`tensorrt provider option "device_id" cannot be set: set runtime.device_id (or --device-id) instead`},
	}
	for _, tt := range tests {
		got, err := checkProviderOptions(tt.provider, tt.in)
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s %v: error %v, want %s", tt.provider, tt.in, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s %v: %v", tt.provider, tt.in, err)
		case !reflect.DeepEqual(got, tt.want):
			t.Errorf("%s %v: got %v, want %v", tt.provider, tt.in, got, tt.want)
		}
	}
}

func TestProviderOptionKeysSettable(t *testing.T) {
	for _, p := range []string{ProviderCUDA, ProviderTensorRT} {
		keys := ProviderOptionKeys(p)
		if len(keys) == 0 {
			t.Fatalf("%s: no keys", p)
		}
		for _, k := range keys {
			if k == "device_id" || strings.HasPrefix(k, "trt_profile_") || strings.Contains(k, "stream") && strings.Contains(k, "user") {
				t.Errorf("%s: %s is settable", p, k)
			}
		}
	}
	if ProviderOptionKeys(ProviderCoreML) != nil {
		t.Error("coreml has checked keys")
	}
}

func TestNewRuntimeChecksProviderOptions(t *testing.T) {
	lib := testLibrary(t)
	tests := []struct {
		opts map[string]map[string]string
		want string
	}{
		{map[string]map[string]string{"cuda": {"gpu_mem_limt": "1"}}, `unknown cuda provider option "gpu_mem_limt": did you mean "gpu_mem_limit"?`},
		{map[string]map[string]string{"metal": {}}, `provider options for unknown execution provider "metal": use one of cpu, cuda, tensorrt, coreml, directml, openvino`},
	}
	for _, tt := range tests {
		_, err := NewRuntime(RuntimeOptions{Library: lib, ProviderOptions: tt.opts})
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewRuntime(%v): %v, want %s", tt.opts, err, tt.want)
		}
	}
}
