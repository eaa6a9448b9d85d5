// Framework: how the training framework that runs a layout implements what the cost model
// cannot read off the config (configs/frameworks/<name>.yaml, each citing its sources). Tessel's
// own is the default; the others let `tessel plan --framework` and tests/planner/ predict
// published runs of other frameworks with the same model.
#pragma once

#include <string>
#include <vector>

namespace tessel {

enum class AttentionImpl {
  kFused,    // flash-style: the T x T scores stay on chip, the causal half skipped (Tessel)
  kUnfused,  // two batched GEMMs around a softmax and dropout that write the T x T scores
};

struct Framework {
  std::string name = "tessel";
  std::string path;  // the file it was read from; empty for the built-in default
  AttentionImpl attention = AttentionImpl::kFused;
  // Pipeline transfers without sequence parallelism send 1/tp of the activations and all-gather
  // them within the node (Megatron-LM's scatter-gather); Tessel sends them whole.
  bool pp_scatter_gather = false;
  // Dropout on the residual branches (fused with the bias and the residual add): a one-byte mask
  // per element written forward and read backward. Tessel trains without dropout.
  bool hidden_dropout = false;
  // Bytes the optimizer step moves per parameter of its shard; 0: Tessel's AdamW (24 in fp32:
  // weights, gradients, two moments read and three written; 34 in bf16/fp16 with the fp32
  // master weights and the low-precision copy).
  double optimizer_bytes_per_param = 0;
};

// configs/frameworks of the source tree, or $TESSEL_FRAMEWORK_DIR.
std::string framework_dir();
std::vector<std::string> known_frameworks();
// A framework by name (configs/frameworks/<name>.yaml) or by path; unknown names and keys, and
// values of the wrong kind, are errors naming the file.
Framework load_framework(const std::string& name_or_path);

}  // namespace tessel
