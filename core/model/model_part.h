// ModelPart: the layers of the model one pipeline rank holds.
//
// A rank holds one or more model chunks, each a run of consecutive layers (one per virtual
// stage, in the order the rank's schedule numbers them), and, when it is the first stage, the
// embedding before chunk 0, and, when it is the last stage, the final norm, the output layer
// and the loss after its last chunk. Without pipeline parallelism the part is the whole model
// in one chunk. Each chunk has `slots` activation slots: the micro-batches that can be between
// their forward and their backward on it at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/model/parameters.h"

namespace tessel {

struct ModelChunk {
  int64_t first_layer = 0;  // layers [first_layer, end_layer)
  int64_t end_layer = 0;
  int slots = 1;
};

struct ModelPart {
  std::vector<ModelChunk> chunks;  // empty: the whole model, one slot
  bool embedding = true;           // chunk 0 starts from the tokens (stage 0)
  bool head = true;                // the last chunk ends in the loss (the last stage)

  // The whole model in one chunk with `slots` activation slots.
  static ModelPart whole(int64_t layers, int slots = 1);
  bool is_whole(int64_t layers) const;
  // "layers 0-1 + embedding, layers 4-5 + head"; "layer 3" for one layer
  std::string describe() const;
};

// The parameters `part` holds, in transformer_param_specs' order (so the embedding comes
// first). A last stage whose output layer is tied to the embedding holds its own copy of the
// embedding weight, under the embedding's name, at the front of its buffers. With expert
// parallelism (ep_size > 1) rank ep_rank of the expert-parallel group holds only its routed
// experts: the ep_rank-th 1/ep_size of each MoE layer's, in order.
std::vector<ParamSpec> part_param_specs(const ModelConfig& config, const ModelPart& part, int ep_rank = 0,
                                        int ep_size = 1);

}  // namespace tessel
