// The YAML config with --set overrides: the YAML text, then NUL-separated "key=value" overrides.
// A config that parses must survive its own round trip: to_yaml, parsed again, gives the same YAML.
#include "core/config/config.h"
#include "core/error.h"
#include "tests/fuzz/split.h"
#include "tests/fuzz/target.h"

namespace tessel::fuzz {

void fuzz_config(std::string_view data) {
  std::vector<std::string> parts = split_nul(data);
  const std::string yaml = parts.front();
  parts.erase(parts.begin());
  std::string emitted;
  try {
    emitted = to_yaml(parse_config(yaml, "fuzz.yaml", parts));
  } catch (const Error&) {
    return;
  }
  std::string again;
  try {
    again = to_yaml(parse_config(emitted, "emitted.yaml"));
  } catch (const Error& e) {
    throw FuzzPropertyFailed("a config that parsed does not parse from its own YAML: " + e.message());
  }
  if (again != emitted) throw FuzzPropertyFailed("to_yaml(parse_config(to_yaml(c))) differs from to_yaml(c)");
}

}  // namespace tessel::fuzz
