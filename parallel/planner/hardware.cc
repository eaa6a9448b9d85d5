#include "parallel/planner/hardware.h"

#include <filesystem>

#include "core/error.h"
#include "parallel/planner/profile_file.h"

namespace tessel {
namespace fs = std::filesystem;

double HardwareProfile::peak_tflops(Precision precision) const {
  switch (precision) {
    case Precision::kBf16: return peak_tflops_bf16;
    case Precision::kFp16: return peak_tflops_fp16;
    case Precision::kFp32: return peak_tflops_fp32;
  }
  return peak_tflops_fp32;
}

std::string hardware_dir() {
  return profile_dir("TESSEL_HARDWARE_DIR", TESSEL_HARDWARE_DIR);  // configs/hardware of the source tree
}

std::vector<std::string> known_hardware() { return profile_names(hardware_dir()); }

HardwareProfile load_hardware(const std::string& name_or_path) {
  const ProfileFile file = load_profile_file(hardware_dir(), name_or_path, "hardware");
  const YAML::Node& y = file.yaml;
  const std::string& path = file.path;
  only_known_keys(
      path, y,
      {"name", "peak_tflops", "gemm_efficiency", "attention_efficiency", "sms", "memory_gb", "memory_bw_gbs",
       "memory_efficiency", "kernel_overhead_us", "gpus_per_node", "intra_node_bw_gbs", "intra_node_busbw_gbs",
       "intra_node_latency_us", "inter_node_bw_gbs", "inter_node_busbw_gbs", "inter_node_latency_us"},
      "a hardware profile");
  HardwareProfile h;
  h.path = path;
  auto number = [&](const YAML::Node& n, const std::string& key) { return profile_number(n, key, path); };
  h.name = y["name"] ? y["name"].as<std::string>() : fs::path(path).stem().string();
  const YAML::Node peak = y["peak_tflops"];
  TESSEL_CHECK(peak && peak.IsMap()) << path << ": missing 'peak_tflops: {bf16, fp16, fp32}'";
  h.peak_tflops_bf16 = number(peak["bf16"], "peak_tflops.bf16");
  h.peak_tflops_fp16 = number(peak["fp16"], "peak_tflops.fp16");
  h.peak_tflops_fp32 = number(peak["fp32"], "peak_tflops.fp32");
  if (y["gemm_efficiency"]) h.gemm_efficiency = number(y["gemm_efficiency"], "gemm_efficiency");
  h.memory_gb = number(y["memory_gb"], "memory_gb");
  h.memory_bw_gbs = number(y["memory_bw_gbs"], "memory_bw_gbs");
  h.gpus_per_node = static_cast<int>(number(y["gpus_per_node"], "gpus_per_node"));
  h.intra_node_bw_gbs = number(y["intra_node_bw_gbs"], "intra_node_bw_gbs");
  h.intra_node_latency_us = number(y["intra_node_latency_us"], "intra_node_latency_us");
  h.inter_node_bw_gbs = number(y["inter_node_bw_gbs"], "inter_node_bw_gbs");
  h.inter_node_latency_us = number(y["inter_node_latency_us"], "inter_node_latency_us");
  // Optional refinements; absent, the model is the plain roofline of the figures above.
  if (y["sms"]) h.sms = static_cast<int>(number(y["sms"], "sms"));
  if (y["attention_efficiency"]) h.attention_efficiency = number(y["attention_efficiency"], "attention_efficiency");
  if (y["memory_efficiency"]) h.memory_efficiency = number(y["memory_efficiency"], "memory_efficiency");
  if (y["kernel_overhead_us"]) h.kernel_overhead_us = number(y["kernel_overhead_us"], "kernel_overhead_us");
  h.intra_node_busbw_gbs =
      y["intra_node_busbw_gbs"] ? number(y["intra_node_busbw_gbs"], "intra_node_busbw_gbs") : h.intra_node_bw_gbs;
  h.inter_node_busbw_gbs =
      y["inter_node_busbw_gbs"] ? number(y["inter_node_busbw_gbs"], "inter_node_busbw_gbs") : h.inter_node_bw_gbs;
  TESSEL_CHECK(h.gemm_efficiency <= 1 && h.memory_efficiency <= 1 && h.attention_efficiency <= 1)
      << path << ": gemm_efficiency, memory_efficiency and attention_efficiency are shares of a peak, at most 1";
  return h;
}

}  // namespace tessel
