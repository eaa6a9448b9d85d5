// The GPT-2 tokenizer against the reference JavaScript encoder (npm gpt-3-encoder, run with
// node) on over 1 MB of varied text, plus round trips and the errors of broken tokenizer files.
// The tokenizer files come from scripts/fetch_gpt2_tokenizer.sh (run by `make test`).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/temp_dir.h"
#include "data/gpt2_tokenizer.h"
#include "data/prepare.h"
#include "data/token_source.h"

using namespace tessel;
namespace fs = std::filesystem;

namespace {

std::string quote_bytes(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      continue;
    }
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\x%02x", c);
    out += buf;
  }
  return out;
}

std::string tokenizer_dir() { return std::string(TESSEL_SOURCE_DIR) + "/.cache/gpt2"; }

std::shared_ptr<const Gpt2Tokenizer> tokenizer() {
  static std::shared_ptr<const Gpt2Tokenizer> t = Gpt2Tokenizer::load(tokenizer_dir());
  return t;
}

// Over 1 MB of text: this repository's prose, code and configs, interleaved with synthetic runs
// of what trips tokenizers up — numbers, punctuation and whitespace runs (Unicode spaces
// included), contractions in any case, many scripts, emoji sequences, combining marks.
std::string varied_corpus() {
  std::string real;
  for (const char* dir :
       {"docs", "core", "core/kernels/cpu", "core/model", "data", "launch", "optim", "configs", "tests/data"}) {
    for (const auto& e : fs::directory_iterator(std::string(TESSEL_SOURCE_DIR) + "/" + dir)) {
      const std::string ext = e.path().extension().string();
      if (ext == ".md" || ext == ".cc" || ext == ".h" || ext == ".yaml" || ext == ".js")
        real += read_file(e.path().string());
    }
  }
  real += read_file(std::string(TESSEL_SOURCE_DIR) + "/README.md");
  const std::vector<std::string> fragments = {"It's",
                                              "it's",
                                              "IT'S",
                                              "we're",
                                              "they've",
                                              "I'm",
                                              "you'll",
                                              "he'd",
                                              "'s",
                                              "'t",
                                              "'re",
                                              " 'll",
                                              "don't",
                                              "O'Neil",
                                              "rock'n'roll",
                                              "''",
                                              "'",
                                              "\"quoted\"",
                                              "3.14159",
                                              "1,000,000",
                                              "2024-11-23",
                                              "0x7fff",
                                              "1e-5",
                                              "12345678901234567890",
                                              " 42",
                                              "٣٤٥",
                                              "Ⅻ",
                                              "½",
                                              "²",
                                              "...",
                                              "!!!",
                                              "?!",
                                              "--",
                                              "—",
                                              "–",
                                              "«»",
                                              "„“",
                                              "(){}[]<>",
                                              "@#$%^&*",
                                              "~~~",
                                              "___",
                                              "==>",
                                              " \t",
                                              "\t\t",
                                              "\n",
                                              "\n\n\n",
                                              "\r\n",
                                              "   ",
                                              "        ",
                                              "\u00a0",
                                              "\u3000",
                                              "\u2009",
                                              "\u202f",
                                              "\ufeff",
                                              "\u2028",
                                              "\u0085",
                                              "\u200b",
                                              "Привет, мир",
                                              "Ελληνικά",
                                              "مرحبا بالعالم",
                                              "שלום עולם",
                                              "नमस्ते दुनिया",
                                              "你好，世界",
                                              "日本語のテキスト",
                                              "한국어 문장",
                                              "สวัสดีชาวโลก",
                                              "Tiếng Việt có dấu",
                                              "Ünïcödé",
                                              "naïve café",
                                              "e\u0301",
                                              "Zürich",
                                              "😀",
                                              "👍🏽",
                                              "👨‍👩‍👧‍👦",
                                              "🏳️‍🌈",
                                              "🇩🇪",
                                              "❤️",
                                              "✨🚀",
                                              "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
                                              "𝟘𝟙𝟚",
                                              "ﬁ",
                                              "Ⓐ",
                                              "<|endoftext|>",
                                              "<|",
                                              "|>",
                                              "def f(x):\n    return x**2\n",
                                              "for (int i = 0; i < n; ++i) {",
                                              "SELECT * FROM t WHERE a='b';",
                                              "https://example.com/a?b=c&d=e",
                                              "user@example.com"};
  std::mt19937 rng(2024);
  std::string out;
  size_t real_pos = 0;
  while (out.size() < (1u << 20) + (1u << 18)) {
    // A slice of real text, then a burst of fragments joined by random separators.
    // Slices start and end on UTF-8 character boundaries: the reference reads its input as
    // UTF-8 and would see a cut character as U+FFFD (invalid bytes are tested separately).
    auto boundary = [&](size_t i) {
      while (i < real.size() && (static_cast<unsigned char>(real[i]) & 0xC0) == 0x80) ++i;
      return i;
    };
    const size_t begin = boundary(real_pos % real.size());
    const size_t end = boundary(std::min(real.size(), begin + 200 + rng() % 1500));
    out += real.substr(begin, end - begin);
    real_pos = end;
    const int burst = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < burst; ++i) {
      out += fragments[rng() % fragments.size()];
      const char* seps[] = {" ", "", "  ", "\n", ", ", "\t", " \n "};
      out += seps[rng() % 7];
    }
  }
  return out;
}

// The reference's ids for each document (see gpt2_reference.js for why documents).
std::vector<std::vector<int32_t>> reference_encode(const std::vector<std::string>& docs) {
  TempDir dir("tessel_gpt2_ref");
  const std::string in = dir.file("docs.txt"), out = dir.file("ids.txt");
  {
    std::ofstream f(in, std::ios::binary);
    for (size_t i = 0; i < docs.size(); ++i) f << (i ? std::string(1, '\0') : std::string()) << docs[i];
  }
  const std::string cmd = "node " + std::string(TESSEL_SOURCE_DIR) + "/tests/data/gpt2_reference.js " +
                          tokenizer_dir() + " < " + in + " > " + out;
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::vector<std::vector<int32_t>> ids(1);
  std::istringstream s(read_file(out));
  for (int32_t id; s >> id;) {
    if (id < 0)
      ids.emplace_back();
    else
      ids.back().push_back(id);
  }
  ids.pop_back();
  return ids;
}

// Cuts text into documents of a few kilobytes at line ends (never inside a UTF-8 character).
std::vector<std::string> documents_of(const std::string& text) {
  std::vector<std::string> docs;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start + 4096);
    end = end == std::string::npos ? text.size() : end + 1;
    docs.push_back(text.substr(start, end - start));
    start = end;
  }
  return docs;
}

}  // namespace

TEST_CASE("GPT-2 BPE ids equal the reference JavaScript encoder's on over 1 MB of varied text", "[data][gpt2]") {
  const std::string text = varied_corpus();
  REQUIRE(text.size() > (1u << 20));
  const std::vector<std::string> docs = documents_of(text);
  const std::vector<std::vector<int32_t>> ref = reference_encode(docs);
  REQUIRE(ref.size() == docs.size());
  Gpt2Tokenizer::Cache cache;
  size_t tokens = 0, mismatched = 0;
  for (size_t d = 0; d < docs.size(); ++d) {
    const std::vector<int32_t> ours = tokenizer()->encode(docs[d], &cache);
    tokens += ours.size();
    if (ours != ref[d] && mismatched++ < 3) {
      size_t i = 0;
      while (i < ours.size() && i < ref[d].size() && ours[i] == ref[d][i]) ++i;
      const size_t from = i >= 4 ? i - 4 : 0;
      const std::vector<int32_t> near(ours.begin() + static_cast<int64_t>(from),
                                      ours.begin() + static_cast<int64_t>(std::min(ours.size(), i + 4)));
      INFO("document " << d << ": first difference at token " << i << ", near "
                       << quote_bytes(tokenizer()->decode(near)));
      CHECK(ours == ref[d]);
    }
  }
  CHECK(mismatched == 0);
  CHECK(tokens > 200000);
  // Without the piece cache, the same ids.
  CHECK(tokenizer()->encode(docs[1]) == ref[1]);
}

TEST_CASE("GPT-2 decode(encode(x)) == x, invalid UTF-8 included", "[data][gpt2]") {
  const std::vector<std::string> texts = {"",
                                          "Hello world",
                                          "  many   spaces\n\n\ttabs",
                                          "😀 emoji ‍ zwj",
                                          std::string("bad \xff\xfe bytes \xc3( and \xe2\x82 cut"),
                                          std::string("\x80\x80\x80"),
                                          std::string("a\0b", 3)};
  for (const std::string& t : texts) {
    INFO(t);
    CHECK(tokenizer()->decode(tokenizer()->encode(t)) == t);
  }
  CHECK(tokenizer()->encode("Hello world") == std::vector<int32_t>{15496, 995});
  CHECK(tokenizer()->vocab_size() == 50257);
  CHECK(tokenizer()->decode({Gpt2Tokenizer::kEndOfText}) == "<|endoftext|>");
  CHECK_THROWS_WITH(tokenizer()->decode({50257}), Catch::Contains("outside the vocabulary"));
}

TEST_CASE("missing or corrupt tokenizer files are clear errors", "[data][gpt2][errors]") {
  TempDir dir("tessel_gpt2_bad");
  CHECK_THROWS_WITH(Gpt2Tokenizer::load(dir.path()),
                    Catch::Contains("encoder.json' not found") && Catch::Contains("fetch"));
  fs::copy_file(tokenizer_dir() + "/vocab.bpe", dir.file("vocab.bpe"));
  std::string enc = read_file(tokenizer_dir() + "/encoder.json");
  std::ofstream(dir.file("encoder.json"), std::ios::binary) << enc.substr(0, enc.size() / 2);  // truncated
  CHECK_THROWS_WITH(Gpt2Tokenizer::load(dir.path()), Catch::Contains("encoder.json"));
  std::ofstream(dir.file("encoder.json"), std::ios::binary) << "{\"a\": 0}";  // valid JSON, wrong content
  CHECK_THROWS_WITH(Gpt2Tokenizer::load(dir.path()), Catch::Contains("<|endoftext|>"));
}

TEST_CASE("data prepare with the GPT-2 tokenizer writes each document's ids and end-of-text", "[data][gpt2]") {
  TempDir dir("tessel_gpt2_prepare");
  std::ofstream(dir.file("a.txt")) << "Hello world, it's a test.";
  std::ofstream(dir.file("b.txt")) << "Привет 😀 again";
  PrepareOptions options;
  options.inputs = {dir.file("a.txt"), dir.file("b.txt")};
  options.tokenizer = TokenizerKind::kGpt2;
  options.tokenizer_dir = tokenizer_dir();
  options.out_prefix = dir.file("ds");
  prepare_dataset(options);
  auto source = open_token_source(dir.file("ds_train"));
  std::vector<int32_t> expected = tokenizer()->encode("Hello world, it's a test.");
  expected.push_back(Gpt2Tokenizer::kEndOfText);
  const std::vector<int32_t> b = tokenizer()->encode("Привет 😀 again");
  expected.insert(expected.end(), b.begin(), b.end());
  expected.push_back(Gpt2Tokenizer::kEndOfText);
  std::vector<int32_t> got(static_cast<size_t>(source->num_tokens()));
  source->read(0, source->num_tokens(), got.data());
  CHECK(got == expected);
  CHECK(source->num_documents() == 2);
  // Two workers write the same bytes.
  options.workers = 2;
  options.out_prefix = dir.file("ds2");
  prepare_dataset(options);
  CHECK(read_file(dir.file("ds2_train.bin")) == read_file(dir.file("ds_train.bin")));
}
