package generators

import (
	"strings"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
)

// The provider classes a generation's cache key holds (genParams.Provider).
// Execution providers run the same graph with different kernels, so they
// make images that differ in their low bits, and visibly with float16 or
// int8 arithmetic: a result is served only to builds of its own class. A
// class names the provider and, where an option changes the arithmetic,
// its precision; it leaves out what does not (the device index, memory
// and cache options, the CUDA options of TensorRT's fallback).
const (
	classCPU          = models.ProviderCPU
	classCUDA         = models.ProviderCUDA
	classTensorRTFP16 = "tensorrt-fp16"
	classTensorRTFP32 = "tensorrt-fp32"
	classTensorRTINT8 = "tensorrt-int8"
)

// providerClass is the class of a provider (a models.Providers name, ""
// for the CPU) run with the given provider options (by provider name, as
// in runtime.provider_options). TensorRT's default is float16, as kiln
// sets trt_fp16_enable; trt_int8_enable makes it int8.
func providerClass(provider string, opts map[string]map[string]string) string {
	p := strings.ToLower(strings.TrimSpace(provider))
	switch p {
	case "", models.ProviderCPU:
		return classCPU
	case models.ProviderTensorRT:
		trt := opts[models.ProviderTensorRT]
		switch {
		case optionOn(trt, "trt_int8_enable", false):
			return classTensorRTINT8
		case optionOn(trt, "trt_fp16_enable", true):
			return classTensorRTFP16
		}
		return classTensorRTFP32
	}
	return p // cuda, coreml, directml, openvino
}

// optionOn reads a boolean provider option, def when unset.
func optionOn(opts map[string]string, key string, def bool) bool {
	v, ok := opts[key]
	if !ok {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true":
		return true
	case "0", "false":
		return false
	}
	return def
}

// ProviderClass is the provider class of the stages this model set runs
// (see providerClass), which Plan puts into their cache keys. With
// runtime.fallback: cpu the provider that will run is known only once
// ONNX Runtime has tried the requested one, so then the runtime is made
// here (once; Open reuses it): a key must never claim a GPU for an
// image the CPU made. If it cannot be made, the requested provider's
// class is the answer and the stages fail with the runtime's error.
func (s *modelStore) ProviderClass() string {
	provider := s.rtOpts.Provider
	p := strings.ToLower(strings.TrimSpace(provider))
	if p != "" && p != models.ProviderCPU && s.rtOpts.Fallback == models.ProviderCPU {
		if rt, err := s.runtime(); err == nil {
			provider = rt.Provider()
		}
	}
	return providerClass(provider, s.rtOpts.ProviderOptions)
}

// planProviderClass is the provider class Plan gives the generation
// stages: the model set's (ProviderClass) when it knows it, else that of
// env.Device's provider or kiln.yaml's runtime.device.
func planProviderClass(env *Env, rt manifests.Runtime) string {
	if pc, ok := env.Models.(interface{ ProviderClass() string }); ok {
		return pc.ProviderClass()
	}
	provider := rt.Device
	if env.Device != "" {
		provider, _, _ = strings.Cut(env.Device, ":")
	}
	return providerClass(provider, rt.ProviderOptions)
}
