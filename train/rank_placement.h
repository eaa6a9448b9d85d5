// Where every rank of a job runs and what it runs: its host name and its Tessel build, gathered
// from all ranks when the job starts (World). Ranks of different builds refuse to train together
// (a version handshake: a host with another binary at the same path would otherwise fail later,
// or silently compute otherwise), naming which ranks on which hosts run what. The hosts also
// name the ranks in later reports.
#pragma once

#include <string>
#include <vector>

#include "core/comm/communicator.h"

namespace tessel {

struct RankPlacement {
  std::vector<std::string> hosts;   // by world rank
  std::vector<std::string> builds;  // by world rank: tessel_version_line()

  // "h1 (ranks 0-1), h2 (ranks 2-3)": hosts in the order of their first rank.
  std::string describe() const;
  // The ranks on `host` as "2-3" or "0, 4" ("" when none).
  std::string ranks_on(const std::string& host) const;
};

// Collective over `world`: every rank's host name and build (each cut to 255 bytes).
RankPlacement gather_rank_placement(Communicator& world, const std::string& host, const std::string& build);

// Throws when the ranks run different builds, listing each build with its ranks and hosts.
void check_same_build(const RankPlacement& placement);

}  // namespace tessel
