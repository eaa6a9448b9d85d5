// The enumerated values of a config, each an enum class parsed once, here, from the name a YAML
// file or a --set override writes (config.h's structs hold them; nothing else compares names).
//
// Every enum has one table of {value, name} pairs (EnumNames<E>::kAll), read by name_of (what
// to_yaml and messages write), parse_name (what parse_config and the CLI read) and valid_names
// (what an error lists). The names are the schema's (DESIGN.md, docs/configuration.md); the
// order of the table is the order errors list them in. Constant tables; thread-safe.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "core/error.h"

namespace tessel {

enum class RunDevice { kAuto, kCpu, kCuda };  // run.device
// run.attention: the CUDA attention kernel in bf16/fp16 (train/device_select.h). kAuto: the one
// measured faster on a GPU and checked against the CPU there (docs/gpu.md).
enum class AttentionKernelChoice { kAuto, kReference, kFlash };
enum class Arch { kGpt2, kLlama };                    // model.arch
enum class Norm { kLayerNorm, kRmsNorm };             // model.norm
enum class Activation { kGelu, kSwiGlu };             // model.activation (GELU: tanh form)
enum class Position { kLearned, kRope };              // model.position
enum class Schedule { kGpipe, k1F1B, kInterleaved };  // parallel.schedule
enum class PipelineSplit { kEven, kEndsAsLayers };    // parallel.pipeline_split
// parallel.device_comm: how groups of device ranks communicate (parallel/device_comm.h).
enum class DeviceComm { kAuto, kNccl, kStaged };
// parallel.zero: stage 1 shards the optimizer state, stage 2 the gradients too. Ordered, so
// `zero >= ZeroStage::k1` reads "the optimizer state is sharded".
enum class ZeroStage { k0 = 0, k1 = 1, k2 = 2 };
enum class Recompute { kNone, kSelective, kFull };            // parallel.recompute
enum class Precision { kFp32, kBf16, kFp16 };                 // precision.compute
enum class LrSchedule { kConstant, kLinear, kCosine, kWsd };  // optim.schedule
enum class TokenizerKind { kBytes, kGpt2 };                   // data.tokenizer
enum class MoeRouter { kSoftmax, kSigmoid };                  // model.moe.router
enum class MoeOverflow { kDrop, kReroute };                   // model.moe.overflow
enum class MoeBalance { kAux, kAuxFree, kNone };              // model.moe.balance
enum class ResumeMode { kAuto, kNone, kPath };                // checkpoint.resume (kPath: a directory)

// parallel.pipeline_split: how model.layers are cut into the pp x virtual_stages pipeline
// stages: a rule (even, ends_as_layers) or, when `counts` is not empty, the layers of each stage
// in stage order (a list in the YAML: [6, 6, 10, 10]), for stages on GPUs of unequal speed.
struct LayerSplit {
  PipelineSplit kind = PipelineSplit::kEven;
  std::vector<int64_t> counts;
  bool operator==(const LayerSplit& o) const { return kind == o.kind && counts == o.counts; }
};

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// Specialized below for every enum of this header.
template <typename E>
struct EnumNames;

template <>
struct EnumNames<RunDevice> {
  static constexpr EnumName<RunDevice> kAll[] = {
      {RunDevice::kAuto, "auto"}, {RunDevice::kCpu, "cpu"}, {RunDevice::kCuda, "cuda"}};
};
template <>
struct EnumNames<AttentionKernelChoice> {
  static constexpr EnumName<AttentionKernelChoice> kAll[] = {{AttentionKernelChoice::kAuto, "auto"},
                                                             {AttentionKernelChoice::kReference, "reference"},
                                                             {AttentionKernelChoice::kFlash, "flash"}};
};
template <>
struct EnumNames<Arch> {
  static constexpr EnumName<Arch> kAll[] = {{Arch::kGpt2, "gpt2"}, {Arch::kLlama, "llama"}};
};
template <>
struct EnumNames<Norm> {
  static constexpr EnumName<Norm> kAll[] = {{Norm::kLayerNorm, "layernorm"}, {Norm::kRmsNorm, "rmsnorm"}};
};
template <>
struct EnumNames<Activation> {
  static constexpr EnumName<Activation> kAll[] = {{Activation::kGelu, "gelu"}, {Activation::kSwiGlu, "swiglu"}};
};
template <>
struct EnumNames<MoeRouter> {
  static constexpr EnumName<MoeRouter> kAll[] = {{MoeRouter::kSoftmax, "softmax"}, {MoeRouter::kSigmoid, "sigmoid"}};
};
template <>
struct EnumNames<MoeOverflow> {
  static constexpr EnumName<MoeOverflow> kAll[] = {{MoeOverflow::kDrop, "drop"}, {MoeOverflow::kReroute, "reroute"}};
};
template <>
struct EnumNames<MoeBalance> {
  static constexpr EnumName<MoeBalance> kAll[] = {
      {MoeBalance::kAux, "aux"}, {MoeBalance::kAuxFree, "aux_free"}, {MoeBalance::kNone, "none"}};
};
template <>
struct EnumNames<Position> {
  static constexpr EnumName<Position> kAll[] = {{Position::kLearned, "learned"}, {Position::kRope, "rope"}};
};
template <>
struct EnumNames<Schedule> {
  static constexpr EnumName<Schedule> kAll[] = {
      {Schedule::kGpipe, "gpipe"}, {Schedule::k1F1B, "1f1b"}, {Schedule::kInterleaved, "interleaved"}};
};
template <>
struct EnumNames<PipelineSplit> {
  static constexpr EnumName<PipelineSplit> kAll[] = {{PipelineSplit::kEven, "even"},
                                                     {PipelineSplit::kEndsAsLayers, "ends_as_layers"}};
};
template <>
struct EnumNames<DeviceComm> {
  static constexpr EnumName<DeviceComm> kAll[] = {
      {DeviceComm::kAuto, "auto"}, {DeviceComm::kNccl, "nccl"}, {DeviceComm::kStaged, "staged"}};
};
template <>
struct EnumNames<ZeroStage> {
  static constexpr EnumName<ZeroStage> kAll[] = {{ZeroStage::k0, "0"}, {ZeroStage::k1, "1"}, {ZeroStage::k2, "2"}};
};
template <>
struct EnumNames<Recompute> {
  static constexpr EnumName<Recompute> kAll[] = {
      {Recompute::kNone, "none"}, {Recompute::kSelective, "selective"}, {Recompute::kFull, "full"}};
};
template <>
struct EnumNames<Precision> {
  static constexpr EnumName<Precision> kAll[] = {
      {Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}, {Precision::kFp16, "fp16"}};
};
template <>
struct EnumNames<LrSchedule> {
  static constexpr EnumName<LrSchedule> kAll[] = {{LrSchedule::kConstant, "constant"},
                                                  {LrSchedule::kLinear, "linear"},
                                                  {LrSchedule::kCosine, "cosine"},
                                                  {LrSchedule::kWsd, "wsd"}};
};
template <>
struct EnumNames<TokenizerKind> {
  static constexpr EnumName<TokenizerKind> kAll[] = {{TokenizerKind::kBytes, "bytes"}, {TokenizerKind::kGpt2, "gpt2"}};
};
// kPath has no name of its own: any other non-empty value is a path.
template <>
struct EnumNames<ResumeMode> {
  static constexpr EnumName<ResumeMode> kAll[] = {{ResumeMode::kAuto, "auto"}, {ResumeMode::kNone, "none"}};
};

// The name of `value` ("gpt2"); "?" for a value outside the table.
template <typename E>
const char* name_of(E value) {
  for (const EnumName<E>& e : EnumNames<E>::kAll) {
    if (e.value == value) return e.name;
  }
  return "?";
}

// Sets *value and returns true when `text` is one of the names.
template <typename E>
bool parse_name(const std::string& text, E* value) {
  for (const EnumName<E>& e : EnumNames<E>::kAll) {
    if (text == e.name) {
      *value = e.value;
      return true;
    }
  }
  return false;
}

// Every name, in the table's order.
template <typename E>
std::vector<std::string> valid_names() {
  std::vector<std::string> out;
  for (const EnumName<E>& e : EnumNames<E>::kAll) out.push_back(e.name);
  return out;
}

// `text` as an E, or an error naming `what` (a command-line flag, say), the text and the valid
// names.
template <typename E>
E parse_choice(const std::string& text, const std::string& what) {
  E value{};
  if (parse_name(text, &value)) return value;
  std::string valid;
  for (const std::string& name : valid_names<E>()) valid += (valid.empty() ? "" : ", ") + name;
  TESSEL_FAIL() << what << ": invalid value '" << text << "'; valid values: " << valid;
}

// Writes the name, so that errors and logs read as the config does.
template <typename E, typename = decltype(EnumNames<E>::kAll)>
std::ostream& operator<<(std::ostream& out, E value) {
  return out << name_of(value);
}

// The stage as a number (0, 1, 2): for messages and the checkpoint's layout record.
inline int zero_stage(ZeroStage z) { return static_cast<int>(z); }

}  // namespace tessel
