// The JSON reader (metrics.jsonl, config.json, tokenizer files) and the JSONL text-field reader
// of `tessel data prepare`. A document that parses must survive its own round trip.
#include "core/error.h"
#include "core/io/json.h"
#include "data/json_text.h"
#include "tests/fuzz/target.h"

namespace tessel::fuzz {

void fuzz_json(std::string_view data) {
  const std::string text(data);
  try {
    const std::string dumped = parse_json(text, "fuzz.json").dump();
    std::string again;
    try {
      again = parse_json(dumped, "dumped.json").dump();
    } catch (const Error& e) {
      throw FuzzPropertyFailed("JSON that parsed does not parse from its own dump: " + e.message());
    }
    if (again != dumped) throw FuzzPropertyFailed("dump(parse(dump(v))) differs from dump(v)");
  } catch (const Error&) {
  }
  try {
    std::string value;
    json_string_field(data, "text", "fuzz.jsonl:1", &value);
  } catch (const Error&) {
  }
}

}  // namespace tessel::fuzz
