// Moving whole tensors in and out of tensor-parallel shards: the gathered view that
// checkpoints and layout-equivalence checks need, and the way back.
//
// `local` is a rank's ParameterStore (its shards) and `full` a store of the same parameters
// without tensor parallelism; the value buffers are laid out like their store (parameters,
// gradients, or AdamW moments, all share the layout).
#pragma once

#include "core/comm/communicator.h"
#include "core/model/parameters.h"

namespace tessel {

// full_values := every parameter whole, assembled from the group's shards (collective over
// `tp`; null or a group of one: a local copy). Values several ranks hold come from the first.
void gather_shards(const ParameterStore& local, const Tensor& local_values, const ParameterStore& full,
                   const Tensor& full_values, Communicator* tp);

// local_values := this rank's shard of full_values (no communication).
void scatter_shards(const ParameterStore& full, const Tensor& full_values, const ParameterStore& local,
                    const Tensor& local_values);

}  // namespace tessel
