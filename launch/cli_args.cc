#include "launch/cli_args.h"

#include <algorithm>

#include "core/error.h"

namespace tessel {

std::string ParsedArgs::get(const std::string& flag, const std::string& fallback) const {
  auto it = flags.find(flag);
  return it == flags.end() ? fallback : it->second;
}

int64_t ParsedArgs::get_int(const std::string& flag, int64_t fallback) const {
  auto it = flags.find(flag);
  if (it == flags.end()) return fallback;
  try {
    size_t used = 0;
    const int64_t v = std::stoll(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  TESSEL_FAIL() << flag << " expects an integer, got '" << it->second << "'";
}

int64_t ParsedArgs::get_int(const std::string& flag, int64_t fallback, int64_t min, int64_t max) const {
  const int64_t v = get_int(flag, fallback);
  TESSEL_CHECK(!has(flag) || (v >= min && v <= max))
      << flag << " must be between " << min << " and " << max << ", got " << get(flag, "");
  return v;
}

double ParsedArgs::get_double(const std::string& flag, double fallback) const {
  auto it = flags.find(flag);
  if (it == flags.end()) return fallback;
  try {
    size_t used = 0;
    const double v = std::stod(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  TESSEL_FAIL() << flag << " expects a number, got '" << it->second << "'";
}

ParsedArgs parse_args(const std::vector<std::string>& args, const std::string& command,
                      const std::vector<std::string>& value_flags, const std::vector<std::string>& switches,
                      bool overrides) {
  auto known = [](const std::vector<std::string>& list, const std::string& s) {
    return std::find(list.begin(), list.end(), s) != list.end();
  };
  ParsedArgs out;
  bool in_set = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--set") {
      TESSEL_CHECK(overrides) << command << ": --set is not an option here; the config comes from the checkpoint";
      in_set = true;
      TESSEL_CHECK(i + 1 < args.size()) << command << ": --set needs key=value, e.g. --set optim.lr=3e-4";
      continue;
    }
    if (a.rfind("--", 0) == 0) {
      in_set = false;
      std::string flag = a, value;
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        flag = a.substr(0, eq);
        value = a.substr(eq + 1);
      }
      if (known(switches, flag)) {
        out.flags[flag] = "1";
        continue;
      }
      if (!known(value_flags, flag)) {
        std::string valid;
        for (const auto& f : value_flags) valid += " " + f;
        for (const auto& f : switches) valid += " " + f;
        if (overrides) valid += " --set";
        TESSEL_FAIL() << command << ": unknown option '" << flag << "'; valid options:" << valid;
      }
      if (eq == std::string::npos) {
        TESSEL_CHECK(i + 1 < args.size()) << command << ": " << flag << " needs a value";
        value = args[++i];
      }
      out.flags[flag] = value;
      continue;
    }
    if (in_set && a.find('=') != std::string::npos) {
      out.overrides.push_back(a);
    } else {
      out.positional.push_back(a);
    }
  }
  return out;
}

}  // namespace tessel
