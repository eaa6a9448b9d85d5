// GPT-2's byte-level BPE on arbitrary bytes: encoding must be lossless (decode(encode(s)) == s,
// invalid UTF-8 included) with every id in the vocabulary; decoding ids taken from the input
// (16 bits each, some beyond the vocabulary) must give the bytes or a tessel::Error.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "data/gpt2_tokenizer.h"
#include "tests/fuzz/target.h"

namespace tessel::fuzz {
namespace {

// GPT-2's files: $TESSEL_GPT2_DIR, else the source tree's .cache/gpt2 (`make tokenizer`).
const Gpt2Tokenizer& tokenizer() {
  static const std::shared_ptr<const Gpt2Tokenizer> t = [] {
    const char* env = std::getenv("TESSEL_GPT2_DIR");
    return Gpt2Tokenizer::load(env != nullptr ? env : std::string(TESSEL_SOURCE_DIR) + "/.cache/gpt2");
  }();
  return *t;
}

}  // namespace

void fuzz_gpt2(std::string_view data) {
  const Gpt2Tokenizer& t = tokenizer();
  Gpt2Tokenizer::Cache cache;
  const std::vector<int32_t> ids = t.encode(data, data.size() % 2 == 0 ? &cache : nullptr);
  for (int32_t id : ids) {
    if (id < 0 || id >= t.vocab_size()) throw FuzzPropertyFailed("encode gave an id outside the vocabulary");
  }
  if (t.decode(ids) != data) throw FuzzPropertyFailed("decode(encode(s)) != s");

  std::vector<int32_t> raw(data.size() / 2);
  for (size_t i = 0; i < raw.size(); ++i) {
    uint16_t v = 0;
    std::memcpy(&v, data.data() + 2 * i, 2);
    raw[i] = v;
  }
  try {
    t.decode(raw);
  } catch (const Error&) {
  }
}

}  // namespace tessel::fuzz
