// Topology: the rank grid tp × cp × dp × pp and every rank's place in it.
//
// Ranks are numbered along the axes in `order`, innermost first: with the default
// "tp-cp-dp-pp", ranks 0..tp-1 form the first tensor-parallel group (so a TP group shares a
// node, where its frequent collectives are cheapest), then context-parallel (reserved, size 1),
// then data-parallel, and pipeline stages outermost. Built once from the config and the world
// size, then passed explicitly: there is no global process-group state. Pure arithmetic, no
// communication; immutable after construction, so safe to share between threads.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/config/config.h"

namespace tessel {

enum class Axis { kTp = 0, kCp = 1, kDp = 2, kPp = 3 };
inline constexpr int kNumAxes = 4;

const char* axis_name(Axis axis);  // "tp", "cp", "dp", "pp"

struct GridShape {
  int tp = 1;
  int cp = 1;  // context parallelism: reserved, always 1 for now
  int dp = 1;
  int pp = 1;
  int size(Axis axis) const;
  int world_size() const { return tp * cp * dp * pp; }
};

// A rank's coordinate on each axis, indexed by Axis.
using Coords = std::array<int, kNumAxes>;

class Topology {
 public:
  // order: the four axis names joined by '-', innermost first (e.g. "tp-cp-dp-pp").
  Topology(GridShape shape, int rank, const std::string& order = "tp-cp-dp-pp");

  // The grid of `config.parallel` on `world_size` ranks: dp 'auto' (0) becomes
  // world_size / (tp · pp). Throws when the world size does not match tp · pp · dp, naming the
  // keys and the layouts that would fit.
  static Topology from_config(const ParallelConfig& config, int world_size, int rank);

  const GridShape& shape() const { return shape_; }
  int rank() const { return rank_; }
  int world_size() const { return shape_.world_size(); }
  int size(Axis axis) const { return shape_.size(axis); }
  int coord(Axis axis) const { return coords_[static_cast<int>(axis)]; }
  const Coords& coords() const { return coords_; }

  Coords coords_of(int rank) const;
  int rank_of(const Coords& coords) const;

  // The ranks of this rank's group along `axis`, ordered by their coordinate on it (so this
  // rank is at index coord(axis)).
  std::vector<int> group(Axis axis) const;
  // Every group along `axis`, each ordered as group() orders it; groups are listed by their
  // smallest rank. Each rank of the world is in exactly one.
  std::vector<std::vector<int>> all_groups(Axis axis) const;
  // A number shared by exactly the ranks of one group along `axis` (the color of a
  // communicator split): the rank of the group's member with coordinate 0.
  int group_color(Axis axis) const;

  bool is_first_stage() const { return coord(Axis::kPp) == 0; }
  bool is_last_stage() const { return coord(Axis::kPp) == shape_.pp - 1; }
  int next_stage_rank() const;  // -1 on the last stage
  int prev_stage_rank() const;  // -1 on the first stage

  // "tp 1/2 dp 0/2 pp 0/1" (cp shown only when > 1); used as the log prefix of the rank.
  std::string describe() const;
  const std::string& order() const { return order_; }

 private:
  GridShape shape_;
  int rank_;
  std::string order_;
  std::array<Axis, kNumAxes> axes_;  // innermost first
  Coords coords_;
};

}  // namespace tessel
