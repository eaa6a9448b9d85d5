#include "train/rank_placement.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "core/strings.h"

namespace tessel {
namespace {

constexpr int64_t kField = 256;  // bytes per string, the last always 0

// Ranks of each value, the values in the order of their first rank.
std::vector<std::pair<std::string, std::vector<int>>> group_ranks(const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (size_t r = 0; r < values.size(); ++r) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == values[r]; });
    if (it == groups.end()) it = groups.insert(groups.end(), {values[r], {}});
    it->second.push_back(static_cast<int>(r));
  }
  return groups;
}

}  // namespace

std::string RankPlacement::describe() const {
  std::ostringstream out;
  const auto groups = group_ranks(hosts);
  for (size_t g = 0; g < groups.size(); ++g) {
    out << (g > 0 ? ", " : "") << groups[g].first << " (rank" << (groups[g].second.size() > 1 ? "s " : " ")
        << number_ranges(groups[g].second) << ")";
  }
  return out.str();
}

std::string RankPlacement::ranks_on(const std::string& host) const {
  std::vector<int> ranks;
  for (size_t r = 0; r < hosts.size(); ++r) {
    if (hosts[r] == host) ranks.push_back(static_cast<int>(r));
  }
  return number_ranges(ranks);
}

RankPlacement gather_rank_placement(Communicator& world, const std::string& host, const std::string& build) {
  const Tensor mine = Tensor::zeros({2 * kField}, DType::I32);
  int32_t* m = mine.data<int32_t>();
  for (size_t i = 0; i < host.size() && i + 1 < kField; ++i) m[i] = static_cast<unsigned char>(host[i]);
  for (size_t i = 0; i < build.size() && i + 1 < kField; ++i) m[kField + i] = static_cast<unsigned char>(build[i]);
  const Tensor all = Tensor::empty({2 * kField * world.size()}, DType::I32);
  world.all_gather(mine, all);
  const auto text = [&](int64_t at) {
    std::string s;
    for (const int32_t* c = all.data<int32_t>() + at; *c != 0; ++c) s.push_back(static_cast<char>(*c));
    return s;
  };
  RankPlacement p;
  for (int r = 0; r < world.size(); ++r) {
    p.hosts.push_back(text(2 * kField * r));
    p.builds.push_back(text(2 * kField * r + kField));
  }
  return p;
}

void check_same_build(const RankPlacement& placement) {
  const auto builds = group_ranks(placement.builds);
  if (builds.size() <= 1) return;
  std::ostringstream out;
  for (const auto& [build, ranks] : builds) {
    std::vector<std::string> hosts;
    for (int r : ranks) {
      if (std::find(hosts.begin(), hosts.end(), placement.hosts[static_cast<size_t>(r)]) == hosts.end())
        hosts.push_back(placement.hosts[static_cast<size_t>(r)]);
    }
    out << "\n  " << build << ": rank" << (ranks.size() > 1 ? "s " : " ") << number_ranges(ranks) << " on ";
    for (size_t h = 0; h < hosts.size(); ++h) out << (h > 0 ? ", " : "") << hosts[h];
  }
  TESSEL_FAIL() << "the ranks of this job run different Tessel builds:" << out.str()
                << "\nhint: install the same build at the same path on every host (tessel --version tells which)";
}

}  // namespace tessel
