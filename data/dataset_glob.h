// Dataset lists by glob: `data.train: [{path: "data/web/shard_*"}]` stands for every dataset the
// pattern matches, in sorted order.
//
// A pattern (with *, ? or [) is matched against files, and, unless it ends in .bin or .idx, as
// a pattern of prefixes against their .idx and .bin files; each match becomes the dataset it
// belongs to: PREFIX.idx or PREFIX.bin of a Megatron pair gives PREFIX (once), a .bin without an
// .idx beside it is an llm.c shard, and other files (PREFIX.tessel.json records) are ignored. A
// path without those characters is returned as it is. Pure function of the file system.
#pragma once

#include <string>
#include <vector>

namespace tessel {

bool is_dataset_glob(const std::string& path);
// The datasets `path` stands for; a glob that matches none is an error naming it.
std::vector<std::string> expand_dataset_glob(const std::string& path);

}  // namespace tessel
