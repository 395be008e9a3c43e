package models

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-dev/kiln/internal/spelling"
)

// Provider options kiln sets for the cuda and tensorrt providers, and the
// ones users may override (runtime.provider_options in kiln.yaml,
// RuntimeOptions.ProviderOptions).
//
// The names are ONNX Runtime 1.24's, as its option parsers spell them
// (onnxruntime/core/providers/cuda/cuda_execution_provider_info.cc and
// onnxruntime/core/providers/tensorrt/tensorrt_execution_provider_info.cc).
// ONNX Runtime refuses unknown names itself, but only when a session is
// made and without saying which names it knows; kiln checks them first.

// optionKind is what values an option takes.
type optionKind uint8

const (
	optBool   optionKind = iota + 1 // "0" or "1" (true/false are normalised)
	optUint                         // a non-negative integer
	optInt                          // an integer
	optString                       // any text
	optEnum                         // one of values
)

// optionSpec describes one provider option.
type optionSpec struct {
	kind   optionKind
	values []string // optEnum
	// refuse, when set, says why the option cannot be set by users and
	// what to do instead.
	refuse string
}

// cudaOptionSpecs are the CUDA provider's options.
func cudaOptionSpecs() map[string]optionSpec {
	pointer := optionSpec{kind: optString, refuse: "it takes a memory address, which only a program embedding ONNX Runtime can give"}
	return map[string]optionSpec{
		"device_id":                          {kind: optUint, refuse: "set runtime.device_id (or --device-id) instead"},
		"gpu_mem_limit":                      {kind: optUint},
		"arena_extend_strategy":              {kind: optEnum, values: []string{"kNextPowerOfTwo", "kSameAsRequested"}},
		"cudnn_conv_algo_search":             {kind: optEnum, values: []string{"EXHAUSTIVE", "HEURISTIC", "DEFAULT"}},
		"do_copy_in_default_stream":          {kind: optBool},
		"cudnn_conv_use_max_workspace":       {kind: optBool},
		"enable_cuda_graph":                  {kind: optBool},
		"cudnn_conv1d_pad_to_nc1d":           {kind: optBool},
		"tunable_op_enable":                  {kind: optBool},
		"tunable_op_tuning_enable":           {kind: optBool},
		"tunable_op_max_tuning_duration_ms":  {kind: optUint},
		"enable_skip_layer_norm_strict_mode": {kind: optBool},
		"prefer_nhwc":                        {kind: optBool},
		"use_ep_level_unified_stream":        {kind: optBool},
		"use_tf32":                           {kind: optBool},
		"fuse_conv_bias":                     {kind: optBool},
		"sdpa_kernel":                        {kind: optUint},
		"has_user_compute_stream":            pointer,
		"user_compute_stream":                pointer,
		"gpu_external_alloc":                 pointer,
		"gpu_external_free":                  pointer,
		"gpu_external_empty_cache":           pointer,
	}
}

// tensorRTOptionSpecs are the TensorRT provider's options.
func tensorRTOptionSpecs() map[string]optionSpec {
	pointer := optionSpec{kind: optString, refuse: "it takes a memory address, which only a program embedding ONNX Runtime can give"}
	profile := optionSpec{kind: optString, refuse: "kiln sets the optimisation profiles of each graph from the image sizes the project uses"}
	context := optionSpec{kind: optString, refuse: "kiln keeps compiled engines in its engine cache and does not write or load EP context models"}
	return map[string]optionSpec{
		"device_id":                             {kind: optUint, refuse: "set runtime.device_id (or --device-id) instead"},
		"trt_max_workspace_size":                {kind: optUint},
		"trt_max_partition_iterations":          {kind: optUint},
		"trt_min_subgraph_size":                 {kind: optUint},
		"trt_fp16_enable":                       {kind: optBool},
		"trt_bf16_enable":                       {kind: optBool},
		"trt_int8_enable":                       {kind: optBool},
		"trt_int8_calibration_table_name":       {kind: optString},
		"trt_int8_use_native_calibration_table": {kind: optBool},
		"trt_dla_enable":                        {kind: optBool},
		"trt_dla_core":                          {kind: optUint},
		"trt_dump_subgraphs":                    {kind: optBool},
		"trt_engine_cache_enable":               {kind: optBool},
		"trt_engine_cache_path":                 {kind: optString},
		"trt_engine_cache_prefix":               {kind: optString},
		"trt_engine_decryption_enable":          {kind: optBool},
		"trt_engine_decryption_lib_path":        {kind: optString},
		"trt_force_sequential_engine_build":     {kind: optBool},
		"trt_context_memory_sharing_enable":     {kind: optBool},
		"trt_layer_norm_fp32_fallback":          {kind: optBool},
		"trt_timing_cache_enable":               {kind: optBool},
		"trt_timing_cache_path":                 {kind: optString},
		"trt_force_timing_cache":                {kind: optBool},
		"trt_detailed_build_log":                {kind: optBool},
		"trt_build_heuristics_enable":           {kind: optBool},
		"trt_sparsity_enable":                   {kind: optBool},
		"trt_builder_optimization_level":        {kind: optUint},
		"trt_auxiliary_streams":                 {kind: optInt},
		"trt_tactic_sources":                    {kind: optString},
		"trt_extra_plugin_lib_paths":            {kind: optString},
		"trt_cuda_graph_enable":                 {kind: optBool},
		"trt_engine_hw_compatible":              {kind: optBool},
		"trt_op_types_to_exclude":               {kind: optString},
		"trt_profile_min_shapes":                profile,
		"trt_profile_opt_shapes":                profile,
		"trt_profile_max_shapes":                profile,
		"trt_dump_ep_context_model":             context,
		"trt_ep_context_file_path":              context,
		"trt_ep_context_embed_mode":             context,
		"trt_weight_stripped_engine_enable":     {kind: optBool, refuse: "weight-stripped engines need the EP context models kiln does not use"},
		"trt_onnx_model_folder_path":            context,
		"has_user_compute_stream":               pointer,
		"user_compute_stream":                   pointer,
		"trt_onnx_bytestream":                   pointer,
		"trt_onnx_bytestream_size":              pointer,
		"trt_external_data_bytestream":          pointer,
		"trt_external_data_bytestream_size":     pointer,
	}
}

func optionSpecs(provider string) map[string]optionSpec {
	switch provider {
	case ProviderCUDA:
		return cudaOptionSpecs()
	case ProviderTensorRT:
		return tensorRTOptionSpecs()
	}
	return nil
}

// ProviderOptionKeys lists, sorted, the options of the cuda or tensorrt
// provider that kiln.yaml's runtime.provider_options may set (nil for
// other providers, whose options kiln passes on unchecked). The
// manifests package keeps its own table for kiln.yaml's schema; a test
// keeps the two equal.
func ProviderOptionKeys(provider string) []string {
	var keys []string
	for k, s := range optionSpecs(provider) {
		if s.refuse == "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// checkProviderOptions checks user options of the cuda or tensorrt
// provider and returns them with booleans spelled "0" and "1", as ONNX
// Runtime's parsers want them. Other providers' options come back as
// they are.
func checkProviderOptions(provider string, opts map[string]string) (map[string]string, error) {
	specs := optionSpecs(provider)
	out := make(map[string]string, len(opts))
	for _, k := range sortedKeys(opts) {
		v := opts[k]
		if specs == nil {
			out[k] = v
			continue
		}
		s, ok := specs[k]
		if !ok {
			hint := "see ONNX Runtime's " + provider + " provider documentation"
			if alt := spelling.Suggest(k, ProviderOptionKeys(provider)); alt != "" {
				hint = fmt.Sprintf("did you mean %q?", alt)
			}
			return nil, fmt.Errorf("unknown %s provider option %q: %s", provider, k, hint)
		}
		if s.refuse != "" {
			return nil, fmt.Errorf("%s provider option %q cannot be set: %s", provider, k, s.refuse)
		}
		nv, err := s.normalise(v)
		if err != nil {
			return nil, fmt.Errorf("%s provider option %s: %w", provider, k, err)
		}
		out[k] = nv
	}
	return out, nil
}

func (s optionSpec) normalise(v string) (string, error) {
	switch s.kind {
	case optBool:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "true":
			return "1", nil
		case "0", "false":
			return "0", nil
		}
		return "", fmt.Errorf("%q is not a boolean: use 0 or 1", v)
	case optUint:
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return "", fmt.Errorf("%q is not a non-negative integer", v)
		}
	case optInt:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "", fmt.Errorf("%q is not an integer", v)
		}
	case optEnum:
		for _, e := range s.values {
			if v == e {
				return v, nil
			}
		}
		hint := "use one of " + strings.Join(s.values, ", ")
		if alt := spelling.Suggest(v, s.values); alt != "" {
			hint = fmt.Sprintf("did you mean %q?", alt)
		}
		return "", fmt.Errorf("%q is not a valid value: %s", v, hint)
	}
	return v, nil
}

// CUDA provider defaults. Each follows ONNX Runtime's own Stable
// Diffusion code (onnxruntime/python/tools/transformers/io_binding_helper.py,
// CudaSession.get_cuda_provider_options, used by
// models/stable_diffusion/engine_builder_ort_cuda.py) or, where that code
// leaves an option alone, ONNX Runtime's default, written out so that the
// build log shows what ran:
//
//   - cudnn_conv_algo_search EXHAUSTIVE (ONNX Runtime's default, which the
//     Stable Diffusion code keeps): cuDNN benchmarks the convolution
//     algorithms once per input shape and session. A build runs tens of
//     denoising steps at a handful of sizes, so the search is paid once and
//     the fastest kernels run after it; the cost is time and memory on the
//     first step of each size (the Stable Diffusion README notes that the
//     first run needs more memory for the search). HEURISTIC skips the
//     benchmark; choose it for GPUs short of memory or projects with many
//     sizes.
//   - arena_extend_strategy kSameAsRequested (as the Stable Diffusion code
//     sets it): the arena grows by what is asked, not to the next power of
//     two, so a session holds close to what it uses. kiln keeps several
//     sessions loaded at once (text encoders, UNet, VAE), and doubling
//     wastes up to half of each arena.
//   - do_copy_in_default_stream 1 (ONNX Runtime's default): copies run on
//     the compute stream, so inputs are in place before the kernels that
//     read them without further synchronisation.
//   - cudnn_conv_use_max_workspace 1 (ONNX Runtime's default since 1.14):
//     cuDNN may use as much workspace as its fastest algorithms want,
//     which the UNet's convolutions profit from.
//   - enable_cuda_graph 0: a CUDA graph replays fixed kernels on fixed
//     buffers, so it needs every input and output bound at a fixed device
//     address with a fixed shape (the Stable Diffusion code captures one
//     graph per shape through I/O binding, and turns it off by default).
//     kiln passes host tensors to Run and changes shapes between assets,
//     which a captured graph cannot follow.
//   - prefer_nhwc is left at ONNX Runtime's default (off): the Stable
//     Diffusion optimisations put convolutions in NHWC layout by rewriting
//     the graph (optimize_pipeline.py), not through this option.
//   - gpu_mem_limit is runtime.memory_budget when one is set: each
//     session's arena then stays within the budget kiln holds the pool to.
func cudaDefaults(deviceID int, memoryBudget int64) map[string]string {
	m := map[string]string{
		"device_id":                    strconv.Itoa(deviceID),
		"cudnn_conv_algo_search":       "EXHAUSTIVE",
		"arena_extend_strategy":        "kSameAsRequested",
		"do_copy_in_default_stream":    "1",
		"cudnn_conv_use_max_workspace": "1",
		"enable_cuda_graph":            "0",
	}
	if memoryBudget > 0 {
		m["gpu_mem_limit"] = strconv.FormatInt(memoryBudget, 10)
	}
	return m
}

// tensorRTDefaults are the TensorRT options kiln sets on every graph, as
// ONNX Runtime's Stable Diffusion TensorRT builder does
// (models/stable_diffusion/engine_builder_ort_trt.py,
// OrtTensorrtEngine.get_tensorrt_provider_options): float16 kernels, and
// the engine and timing caches on. The cache folders and the optimisation
// profiles are per graph (see tensorRTGraph).
//
// trt_fp16_enable lets TensorRT run layers in float16, TensorRT's main
// speed-up over the CUDA provider; images then differ from the CPU's in
// the last bits, as they do with any float16 model. Set it to 0 for
// float32 kernels.
func tensorRTDefaults(deviceID int) map[string]string {
	return map[string]string{
		"device_id":               strconv.Itoa(deviceID),
		"trt_fp16_enable":         "1",
		"trt_engine_cache_enable": "1",
		"trt_timing_cache_enable": "1",
	}
}

// mergeOptions returns defaults overridden by user.
func mergeOptions(defaults, user map[string]string) map[string]string {
	out := make(map[string]string, len(defaults)+len(user))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range user {
		out[k] = v
	}
	return out
}
