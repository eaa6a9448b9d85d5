// HardwareProfile: what the planner knows of one kind of GPU (or CPU rank) and the links
// between them, from configs/hardware/<name>.yaml (each file cites its sources).
#pragma once

#include <string>
#include <vector>

#include "core/config/values.h"

namespace tessel {

struct HardwareProfile {
  std::string name;
  std::string path;                                                         // the file it was read from
  double peak_tflops_bf16 = 0, peak_tflops_fp16 = 0, peak_tflops_fp32 = 0;  // dense
  double gemm_efficiency = 0.8;       // of peak reached by large, well-shaped GEMMs
  double attention_efficiency = 0.6;  // fused attention's FLOP rate as a share of large GEMMs'
  int sms = 0;                        // streaming multiprocessors, for wave quantisation (0: none, a CPU)
  double memory_efficiency = 1;       // share of memory_bw_gbs that streaming (memory-bound) kernels reach
  double kernel_overhead_us = 0;      // per kernel: the launch gap and the ramp of a kernel's first and last wave
  double memory_gb = 0;               // per GPU
  double memory_bw_gbs = 0;
  int gpus_per_node = 8;
  double intra_node_bw_gbs = 0, intra_node_latency_us = 0;  // per GPU, each direction
  double inter_node_bw_gbs = 0, inter_node_latency_us = 0;
  // Bus bandwidth NCCL collectives reach on large messages (nccl-tests' busbw), per GPU; the
  // link bandwidth above when the profile gives none. Point-to-point transfers use the link's.
  double intra_node_busbw_gbs = 0, inter_node_busbw_gbs = 0;

  double peak_tflops(Precision precision) const;
};

// The directory of the shipped profiles (configs/hardware of the source tree, or
// $TESSEL_HARDWARE_DIR).
std::string hardware_dir();
// Names of the profiles in hardware_dir(), sorted.
std::vector<std::string> known_hardware();
// A profile by name (configs/hardware/<name>.yaml) or by path to a .yaml file; an unknown name
// is an error listing the known ones.
HardwareProfile load_hardware(const std::string& name_or_path);

// What `tessel tune` measured against these profiles, per model: parallel/planner/calibration.h.

}  // namespace tessel
