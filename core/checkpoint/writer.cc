#include "core/checkpoint/writer.h"

#include "core/checkpoint/directory.h"
#include "core/checkpoint/manifest.h"
#include "core/checkpoint/rank_file.h"
#include "core/error.h"

namespace tessel {

std::string publish_checkpoint(const std::string& root, const std::string& tmp_dir, const CheckpointMeta& meta,
                               int64_t keep) {
  write_manifest(tmp_dir, meta);
  std::string step_dir = publish_step_dir(root, tmp_dir, meta.state.step);
  prune_checkpoints(root, step_dir, keep);
  return step_dir;
}

std::string save_checkpoint(const std::string& root, const CheckpointData& data, int64_t keep) {
  TESSEL_CHECK(data.params != nullptr) << "save_checkpoint: no parameters";
  const ParameterStore& store = *data.params;
  RankCheckpoint part;
  part.params = &store;
  part.write_params.assign(store.entries().size(), true);
  if (data.adam_m != nullptr && data.adam_v != nullptr) {
    for (size_t i = 0; i < store.entries().size(); ++i) {
      const ParamEntry& e = store.entries()[i];
      part.state.push_back(
          {i, 0, e.numel, data.adam_m->view(e.offset, {e.numel}), data.adam_v->view(e.offset, {e.numel})});
    }
  }
  const std::string tmp = prepare_checkpoint_dir(root, data.state.step);
  write_rank_checkpoint(tmp, 0, part);
  CheckpointMeta meta;
  meta.state = data.state;
  meta.config_yaml = data.config_yaml;
  meta.has_optimizer = data.adam_m != nullptr;
  meta.layout.tp = store.tp_size();
  return publish_checkpoint(root, tmp, meta, keep);
}

}  // namespace tessel
