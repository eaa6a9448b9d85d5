// Learning-rate schedules: the learning rate of an optimizer step, a pure function of the
// config, the run length and the step, so that a resumed run continues the same curve.
//
// `step` is 0-based (the first optimizer step is 0). Every schedule starts with linear warmup,
// lr·(step+1)/warmup_steps for step < warmup_steps (so step 0 already trains), then:
//   constant  lr
//   linear    lr → min_lr linearly over decay_steps, reaching min_lr at
//             step = warmup_steps + decay_steps and staying there
//   cosine    min_lr + (lr − min_lr)·(1 + cos(π·progress))/2, same phase as linear
//   wsd       warmup, stable at lr, then linear to min_lr over the last decay_steps steps
//             (ending at step = total_steps)
// decay_steps 0 means: total_steps − warmup_steps (linear, cosine), or total_steps / 5, at least
// 1 (wsd). Pure; thread-safe.
#pragma once

#include <cstdint>

#include "core/config/config.h"

namespace tessel {

double learning_rate(const OptimConfig& optim, int64_t total_steps, int64_t step);

}  // namespace tessel
