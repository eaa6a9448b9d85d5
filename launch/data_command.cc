// `tessel data prepare|inspect`; see data_command.h.
#include "launch/commands.h"
#include "launch/usage.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "core/text_escape.h"
#include "data/inspect.h"
#include "data/prepare.h"
#include "data/token_source.h"
#include "data/tokenizer.h"

namespace tessel {
namespace {

constexpr int64_t kDefaultInspectTokens = 32;
constexpr int64_t kProgressMinBytes = int64_t{64} << 20;

// Splits "--flag=value" into flag and value; other arguments pass through unchanged.
std::vector<std::string> split_equals(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& a : args) {
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      out.push_back(a.substr(0, eq));
      out.push_back(a.substr(eq + 1));
    } else {
      out.push_back(a);
    }
  }
  return out;
}

class ArgReader {
 public:
  ArgReader(std::vector<std::string> args, const char* command) : args_(std::move(args)), command_(command) {}

  bool done() const { return pos_ >= args_.size(); }
  const std::string& next() { return args_[pos_++]; }
  bool next_is_value() const { return !done() && args_[pos_].rfind("--", 0) != 0; }

  std::string value(const std::string& flag) {
    TESSEL_CHECK(next_is_value()) << "tessel data " << command_ << ": " << flag << " needs a value\n"
                                  << command_usage("data");
    return next();
  }
  double number(const std::string& flag) {
    const std::string v = value(flag);
    char* end = nullptr;
    errno = 0;
    const double x = std::strtod(v.c_str(), &end);
    TESSEL_CHECK(!v.empty() && *end == '\0' && errno == 0)
        << "tessel data " << command_ << ": " << flag << " expects a number, got '" << v << "'";
    return x;
  }
  uint64_t unsigned_integer(const std::string& flag) {
    const std::string v = value(flag);
    char* end = nullptr;
    errno = 0;
    const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
    TESSEL_CHECK(!v.empty() && v[0] != '-' && *end == '\0' && errno == 0)
        << "tessel data " << command_ << ": " << flag << " expects a non-negative integer, got '" << v << "'";
    return x;
  }
  [[noreturn]] void unknown(const std::string& arg) const {
    TESSEL_FAIL() << "tessel data " << command_ << ": unexpected argument '" << arg << "'\n" << command_usage("data");
  }

 private:
  std::vector<std::string> args_;
  const char* command_;
  size_t pos_ = 0;
};

std::string megabytes(int64_t bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << static_cast<double>(bytes) / 1e6 << " MB";
  return s.str();
}

int run_prepare(const std::vector<std::string>& args, std::ostream& out) {
  ArgReader r(split_equals(args), "prepare");
  PrepareOptions options;
  bool has_tokenizer = false;
  while (!r.done()) {
    const std::string flag = r.next();
    if (flag == "--input") {
      TESSEL_CHECK(r.next_is_value()) << "tessel data prepare: --input needs at least one file\n"
                                      << command_usage("data");
      while (r.next_is_value()) options.inputs.push_back(r.next());
    } else if (flag == "--tokenizer") {
      options.tokenizer = parse_choice<TokenizerKind>(r.value(flag), "tessel data prepare --tokenizer");
      has_tokenizer = true;
    } else if (flag == "--tokenizer-dir") {
      options.tokenizer_dir = r.value(flag);
    } else if (flag == "--workers") {
      options.workers = static_cast<int>(r.unsigned_integer(flag));
    } else if (flag == "--format") {
      options.format = r.value(flag);
    } else if (flag == "--shard-tokens") {
      options.shard_tokens = static_cast<int64_t>(r.unsigned_integer(flag));
    } else if (flag == "--out") {
      options.out_prefix = r.value(flag);
    } else if (flag == "--val-fraction") {
      options.val_fraction = r.number(flag);
    } else if (flag == "--val-split") {
      const std::string how = r.value(flag);
      TESSEL_CHECK(how == "documents" || how == "tokens")
          << "tessel data prepare: --val-split expects documents or tokens, got '" << how << "'";
      options.val_split_tokens = how == "tokens";
    } else if (flag == "--split-lines") {
      options.split_lines = true;
    } else if (flag == "--seed") {
      options.seed = r.unsigned_integer(flag);
    } else {
      r.unknown(flag);
    }
  }
  TESSEL_CHECK(!options.inputs.empty()) << "tessel data prepare: missing --input FILE...\n" << command_usage("data");
  TESSEL_CHECK(!options.out_prefix.empty()) << "tessel data prepare: missing --out PREFIX\n" << command_usage("data");
  // The tokenizer decides what every id means, and a model trains only on its own: never guessed.
  TESSEL_CHECK(has_tokenizer) << "tessel data prepare: missing --tokenizer bytes|gpt2 (the tokenizer the model will "
                              << "train with: gpt2 for GPT-2's 50,257-token BPE, bytes for one id per byte)\n"
                              << command_usage("data");
  const auto start = std::chrono::steady_clock::now();
  const bool tty = &out == &std::cout && isatty(STDOUT_FILENO);
  const PrepareSummary s = prepare_dataset(options, [&](const PrepareProgress& p) {
    if (p.total_bytes < kProgressMinBytes) return;  // small jobs: the summary says enough
    // A bar with throughput; redrawn in place on a terminal, one line per update otherwise.
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double fraction = static_cast<double>(p.bytes_read) / static_cast<double>(p.total_bytes);
    const int filled = static_cast<int>(fraction * 30);
    out << (tty ? "\r" : "") << "  [" << std::string(static_cast<size_t>(filled), '#')
        << std::string(static_cast<size_t>(30 - filled), '.') << "] " << std::fixed << std::setprecision(0)
        << 100 * fraction << "% " << megabytes(p.bytes_read) << " of " << megabytes(p.total_bytes) << ", "
        << std::setprecision(1) << static_cast<double>(p.bytes_read) / 1e6 / std::max(seconds, 1e-9) << " MB/s, "
        << p.documents << " documents" << (tty ? "" : "\n") << std::flush;
  });
  if (tty && s.bytes_read >= kProgressMinBytes) out << "\n";
  const double mb_per_s = s.seconds > 0 ? static_cast<double>(s.bytes_read) / 1e6 / s.seconds : 0;
  out << "prepared " << s.documents << " documents, " << s.tokens << " tokens from " << megabytes(s.bytes_read)
      << " in " << std::fixed << std::setprecision(2) << s.seconds << " s (" << mb_per_s << " MB/s)";
  if (s.skipped_documents > 0) out << "; skipped " << s.skipped_documents << " empty documents";
  out << "\n";
  out << "  train: " << s.train_documents << " documents, " << s.train_tokens << " tokens\n";
  if (!s.val_prefix.empty()) {
    out << "  val:   " << s.val_documents << " documents, " << s.val_tokens << " tokens\n";
  }
  out << "  tokenizer: " << name_of(options.tokenizer) << ", format " << options.format << ", dtype u16\n";
  for (const std::string& f : s.output_files) out << "  wrote " << f << "\n";
  for (const std::string& f : s.removed_files) out << "  removed " << f << " (stale: an earlier prepare's output)\n";
  return 0;
}

int run_inspect(const std::vector<std::string>& args, std::ostream& out) {
  ArgReader r(split_equals(args), "inspect");
  std::string path, tokenizer_dir;
  TokenizerKind tokenizer = TokenizerKind::kBytes;
  int64_t show = kDefaultInspectTokens;
  while (!r.done()) {
    const std::string arg = r.next();
    if (arg == "--tokens") {
      show = static_cast<int64_t>(r.unsigned_integer(arg));
    } else if (arg == "--tokenizer") {
      tokenizer = parse_choice<TokenizerKind>(r.value(arg), "tessel data inspect --tokenizer");
    } else if (arg == "--tokenizer-dir") {
      tokenizer_dir = r.value(arg);
    } else if (arg.rfind("--", 0) != 0 && path.empty()) {
      path = arg;
    } else {
      r.unknown(arg);
    }
  }
  TESSEL_CHECK(!path.empty()) << "tessel data inspect: missing PATH\n" << command_usage("data");
  std::unique_ptr<TokenSource> source = open_token_source(path);
  out << describe_token_source(*source, show);
  if (tokenizer == TokenizerKind::kGpt2) {
    std::vector<int32_t> ids(static_cast<size_t>(std::min(show, source->num_tokens())));
    source->read(0, static_cast<int64_t>(ids.size()), ids.data());
    out << "as gpt2:   " << quote_escaped(make_tokenizer(TokenizerKind::kGpt2, tokenizer_dir)->decode(ids)) << "\n";
  }
  return 0;
}

}  // namespace

int run_data_command(const std::vector<std::string>& args) { return run_data_command(args, std::cout); }

int run_data_command(const std::vector<std::string>& args, std::ostream& out) {
  TESSEL_CHECK(!args.empty()) << "tessel data: missing subcommand (prepare or inspect)\n" << command_usage("data");
  const std::string& sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "prepare") return run_prepare(rest, out);
  if (sub == "inspect") return run_inspect(rest, out);
  TESSEL_FAIL() << "tessel data: unknown subcommand '" << sub << "'; expected prepare or inspect\n"
                << command_usage("data");
}

}  // namespace tessel
