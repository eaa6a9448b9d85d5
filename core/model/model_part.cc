#include "core/model/model_part.h"

#include <sstream>

#include "core/error.h"
#include "core/model/param_specs.h"

namespace tessel {

ModelPart ModelPart::whole(int64_t layers, int slots) {
  ModelPart p;
  p.chunks.push_back({0, layers, slots});
  return p;
}

bool ModelPart::is_whole(int64_t layers) const {
  return embedding && head && chunks.size() == 1 && chunks[0].first_layer == 0 && chunks[0].end_layer == layers;
}

std::string ModelPart::describe() const {
  std::ostringstream out;
  for (size_t c = 0; c < chunks.size(); ++c) {
    if (c > 0) out << ", ";
    if (chunks[c].end_layer - chunks[c].first_layer == 1) {
      out << "layer " << chunks[c].first_layer;
    } else {
      out << "layers " << chunks[c].first_layer << "-" << chunks[c].end_layer - 1;
    }
    if (c == 0 && embedding) out << " + embedding";
    if (c + 1 == chunks.size() && head) out << " + head";
  }
  return out.str();
}

std::vector<ParamSpec> part_param_specs(const ModelConfig& config, const ModelPart& part, int ep_rank, int ep_size) {
  TESSEL_CHECK(ep_size >= 1 && ep_rank >= 0 && ep_rank < ep_size && config.moe.experts % ep_size == 0)
      << "expert-parallel rank " << ep_rank << " of " << ep_size << " for " << config.moe.experts
      << " experts; hint: parallel.ep must divide model.moe.experts";
  const int64_t local_experts = config.moe.experts / ep_size;
  const ModelNames n = model_names(config);
  auto holds_layer = [&](int64_t layer) {
    for (const ModelChunk& c : part.chunks) {
      if (layer >= c.first_layer && layer < c.end_layer) return true;
    }
    return false;
  };
  std::vector<ParamSpec> out;
  for (ParamSpec& s : transformer_param_specs(config)) {
    bool keep;
    if (s.name == n.wte) {
      keep = part.embedding || (part.head && config.tie_embeddings);
    } else if (s.name == n.wpe) {
      keep = part.embedding;
    } else if (s.name == n.final_norm_w || s.name == n.final_norm_b || s.name == n.lm_head) {
      keep = part.head;
    } else {
      // A layer's parameters: its index follows the family's prefix.
      const std::string prefix = n.hf_gpt2 ? "transformer.h." : "model.layers.";
      keep = holds_layer(std::stoll(s.name.substr(prefix.size())));
      if (s.expert >= 0 && s.expert / local_experts != ep_rank) keep = false;
    }
    if (keep) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace tessel
