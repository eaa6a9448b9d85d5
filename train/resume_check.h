// What may change between a checkpoint and the run that resumes from it.
//
//  - The model (every model.* setting but seq_len and init_std): a change computes something
//    else with the same tensors, so it is refused, naming each key old → new. seq_len may grow
//    or shrink (context extension), init_std no longer matters once weights are loaded.
//  - The optimizer: the learning-rate schedule is compared as the curve it gives, step by step,
//    not as raw settings, so optim.decay_steps set to the value it had by default is no change;
//    a real change, and any change of the AdamW hyper-parameters, the seed or the batch, is
//    named in a warning (changing them on purpose is legitimate).
//  - The data: each dataset's fingerprint (data/dataset_identity.h) against the one the
//    checkpoint recorded: a dataset rewritten under the same path, or another one, is refused
//    unless checkpoint.allow_data_change; a change of the weights of the blend is a warning.
// Pure functions over configs and fingerprints; each returns one line per difference.
#pragma once

#include <string>
#include <vector>

#include "core/checkpoint/format.h"
#include "core/config/config.h"

namespace tessel {

// "model.heads: 4 → 8" for every setting that changes what the model computes.
std::vector<std::string> model_changes(const ModelConfig& saved, const ModelConfig& now);
// Settings whose change makes the run diverge from the one it continues (warnings); the
// schedule is compared over the steps from `from_step` (the checkpoint's) to now.run.steps.
std::vector<std::string> training_changes(const Config& saved, const Config& now, int64_t from_step);
// Datasets that are not what the checkpoint's run read: "train data/x: 123 bytes, crc 1a2b → ...".
std::vector<std::string> data_changes(const std::vector<DatasetFingerprint>& saved,
                                      const std::vector<DatasetFingerprint>& now);

}  // namespace tessel
