#include "parallel/topology.h"

#include <sstream>

#include "core/error.h"

namespace tessel {
namespace {

// "tp-cp-dp-pp" → the four axes, innermost first; each exactly once.
std::array<Axis, kNumAxes> parse_order(const std::string& order) {
  std::array<Axis, kNumAxes> axes{};
  std::array<bool, kNumAxes> seen{};
  std::stringstream in(order);
  std::string name;
  int n = 0;
  while (std::getline(in, name, '-')) {
    int a = -1;
    for (int i = 0; i < kNumAxes; ++i) {
      if (name == axis_name(static_cast<Axis>(i))) a = i;
    }
    TESSEL_CHECK(a >= 0 && n < kNumAxes && !seen[static_cast<size_t>(a)])
        << "parallel.order '" << order << "': expected the axes tp, cp, dp and pp, each once, joined by "
        << "'-' innermost first (e.g. tp-cp-dp-pp)";
    seen[static_cast<size_t>(a)] = true;
    axes[static_cast<size_t>(n++)] = static_cast<Axis>(a);
  }
  TESSEL_CHECK(n == kNumAxes) << "parallel.order '" << order << "': expected the axes tp, cp, dp and pp, "
                              << "each once, joined by '-' innermost first (e.g. tp-cp-dp-pp)";
  return axes;
}

}  // namespace

const char* axis_name(Axis axis) {
  switch (axis) {
    case Axis::kTp: return "tp";
    case Axis::kCp: return "cp";
    case Axis::kDp: return "dp";
    case Axis::kPp: return "pp";
  }
  return "?";
}

int GridShape::size(Axis axis) const {
  switch (axis) {
    case Axis::kTp: return tp;
    case Axis::kCp: return cp;
    case Axis::kDp: return dp;
    case Axis::kPp: return pp;
  }
  return 1;
}

Topology::Topology(GridShape shape, int rank, const std::string& order)
    : shape_(shape), rank_(rank), order_(order), axes_(parse_order(order)) {
  for (int a = 0; a < kNumAxes; ++a) {
    TESSEL_CHECK(shape_.size(static_cast<Axis>(a)) >= 1)
        << "parallel." << axis_name(static_cast<Axis>(a)) << " must be at least 1, got "
        << shape_.size(static_cast<Axis>(a));
  }
  TESSEL_CHECK(rank >= 0 && rank < shape_.world_size())
      << "rank " << rank << " is outside the grid of " << shape_.world_size() << " ranks";
  coords_ = coords_of(rank);
}

Topology Topology::from_config(const ParallelConfig& config, int world_size, int rank) {
  const int64_t tp = config.tp, pp = config.pp;
  TESSEL_CHECK(world_size % (tp * pp) == 0)
      << "world size " << world_size << " is not divisible by parallel.tp (" << tp << ") x parallel.pp (" << pp
      << ") = " << tp * pp << "; hint: launch a multiple of " << tp * pp << " ranks (tessel launch "
      << "--nproc-per-node " << tp * pp << " CONFIG), or choose tp and pp whose product divides " << world_size;
  int64_t dp = config.dp == 0 ? world_size / (tp * pp) : config.dp;
  TESSEL_CHECK(tp * pp * dp == world_size)
      << "world size " << world_size << " does not match parallel.tp (" << tp << ") x parallel.pp (" << pp
      << ") x parallel.dp (" << dp << ") = " << tp * pp * dp
      << "; hint: set parallel.dp=auto (dp = " << world_size / (tp * pp) << " here), or launch " << tp * pp * dp
      << " ranks";
  GridShape shape;
  shape.tp = static_cast<int>(tp);
  shape.pp = static_cast<int>(pp);
  shape.dp = static_cast<int>(dp);
  return Topology(shape, rank, config.order);
}

Coords Topology::coords_of(int rank) const {
  Coords c{};
  int rest = rank;
  for (Axis a : axes_) {
    const int n = shape_.size(a);
    c[static_cast<size_t>(a)] = rest % n;
    rest /= n;
  }
  return c;
}

int Topology::rank_of(const Coords& coords) const {
  int rank = 0, stride = 1;
  for (Axis a : axes_) {
    rank += coords[static_cast<size_t>(a)] * stride;
    stride *= shape_.size(a);
  }
  return rank;
}

std::vector<int> Topology::group(Axis axis) const {
  std::vector<int> ranks;
  Coords c = coords_;
  for (int i = 0; i < shape_.size(axis); ++i) {
    c[static_cast<size_t>(axis)] = i;
    ranks.push_back(rank_of(c));
  }
  return ranks;
}

std::vector<std::vector<int>> Topology::all_groups(Axis axis) const {
  std::vector<std::vector<int>> groups;
  for (int r = 0; r < world_size(); ++r) {
    if (coords_of(r)[static_cast<size_t>(axis)] != 0) continue;
    Topology member(shape_, r, order_);
    groups.push_back(member.group(axis));
  }
  return groups;
}

int Topology::group_color(Axis axis) const { return group(axis).front(); }

int Topology::next_stage_rank() const {
  if (is_last_stage()) return -1;
  Coords c = coords_;
  ++c[static_cast<size_t>(Axis::kPp)];
  return rank_of(c);
}

int Topology::prev_stage_rank() const {
  if (is_first_stage()) return -1;
  Coords c = coords_;
  --c[static_cast<size_t>(Axis::kPp)];
  return rank_of(c);
}

std::string Topology::describe() const {
  std::ostringstream out;
  out << "tp " << coord(Axis::kTp) << "/" << shape_.tp;
  if (shape_.cp > 1) out << " cp " << coord(Axis::kCp) << "/" << shape_.cp;
  out << " dp " << coord(Axis::kDp) << "/" << shape_.dp << " pp " << coord(Axis::kPp) << "/" << shape_.pp;
  return out.str();
}

}  // namespace tessel
