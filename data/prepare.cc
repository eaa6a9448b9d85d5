// Corpus preparation; see prepare.h.
#include "data/prepare.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>

#include "core/dtype.h"
#include "core/error.h"
#include "core/io/file.h"
#include "core/strings.h"
#include "core/version.h"
#include "data/dataset_identity.h"
#include "data/dataset_writer.h"
#include "data/hash.h"
#include "data/indexed_dataset.h"
#include "data/json_text.h"
#include "data/tokenizer.h"

namespace tessel {
namespace {

constexpr int64_t kProgressEveryBytes = int64_t{16} << 20;
constexpr size_t kReadChunk = size_t{1} << 20;

bool is_blank(const std::string& s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

// Routes documents to the train/val writers, holding back the last one so that its side can be
// adjusted at the end (see prepare.h).
class DocumentRouter {
 public:
  DocumentRouter(const PrepareOptions& options, PrepareSummary* summary) : options_(options), summary_(summary) {
    const int workers = options.workers > 0 ? options.workers : std::max(1, omp_get_num_procs());
    tokenizers_ = make_tokenizers(options.tokenizer, options.tokenizer_dir, workers);
    summary_->train_prefix = options.out_prefix + "_train";
    train_ = make_dataset_writer(options.format, summary_->train_prefix, options.shard_tokens);
    if (options.val_fraction > 0) {
      summary_->val_prefix = options.out_prefix + "_val";
      val_ = make_dataset_writer(options.format, summary_->val_prefix, options.shard_tokens);
    }
  }

  // Queues one document; empty ones are skipped and counted. Documents are tokenized a batch at
  // a time by the workers and written in input order, so the output does not depend on the
  // number of workers, and memory stays bounded by one batch.
  void add(const std::string& text) {
    if (text.empty()) {
      ++summary_->skipped_documents;
      return;
    }
    batch_bytes_ += text.size();
    batch_.push_back(text);
    if (batch_.size() >= kBatchDocuments || batch_bytes_ >= kBatchBytes) flush_batch();
  }

  int64_t documents() const { return ordinal_; }
  int64_t tokens() const { return seen_tokens_; }

  void finish() {
    flush_batch();
    TESSEL_CHECK(has_pending_ || summary_->documents > 0)
        << "no documents found in the " << options_.inputs.size() << " input(s) (all " << summary_->skipped_documents
        << " were empty); hint: check the inputs, and that .jsonl records have a non-empty \"text\" field";
    if (has_pending_) {
      bool to_val = pending_to_val_;
      if (val_ != nullptr && ordinal_ >= 2) {
        if (summary_->val_documents == 0) to_val = true;
        if (summary_->train_documents == 0) to_val = false;
      } else {
        to_val = false;  // a single document trains; the check below says why there is no validation
      }
      write(pending_, to_val);
    }
    if (val_ != nullptr) check_split();
    for (const std::string& f : train_->finish()) summary_->output_files.push_back(f);
    if (val_ != nullptr) {
      for (const std::string& f : val_->finish()) summary_->output_files.push_back(f);
    }
    // Each output records the tokenizer it was made with, which training checks.
    const Tokenizer& t = *tokenizers_.front();
    for (const std::string& prefix : {summary_->train_prefix, summary_->val_prefix}) {
      if (prefix.empty()) continue;
      write_dataset_record(prefix, {t.name(), t.vocab_size(), tessel_version_line()});
      summary_->output_files.push_back(prefix + ".tessel.json");
    }
  }

 private:
  static constexpr size_t kBatchDocuments = 1024;
  static constexpr size_t kBatchBytes = 8 << 20;

  void flush_batch() {
    std::vector<std::vector<int32_t>> ids(batch_.size());
    const bool eot_first = train_->end_of_text_first();
#pragma omp parallel for num_threads(static_cast <int>(tokenizers_.size())) schedule(dynamic, 1)
    for (size_t i = 0; i < batch_.size(); ++i) {
      Tokenizer& t = *tokenizers_[static_cast<size_t>(omp_get_thread_num())];
      // End-of-text ends a Megatron document and begins an llm.c one (each format's convention).
      if (eot_first) ids[i].push_back(t.end_of_text());
      t.encode_append(batch_[i], &ids[i]);
      if (!eot_first) ids[i].push_back(t.end_of_text());
    }
    for (std::vector<int32_t>& doc : ids) route(std::move(doc));
    batch_.clear();
    batch_bytes_ = 0;
  }

  // A split whose validation is empty or far larger than asked is refused (prepare.h).
  void check_split() const {
    const PrepareSummary& s = *summary_;
    const std::string hints =
        "hint: with one large file, cut validation from the end of its text with --val-split tokens; or split it "
        "into documents with --split-lines (one per line), or pass more, smaller files";
    TESSEL_CHECK(s.val_tokens > 0) << "data prepare: --val-fraction " << options_.val_fraction
                                   << " left the validation "
                                   << "split empty: " << s.documents << " document(s) of " << s.tokens
                                   << " tokens cannot be split by documents; " << hints;
    const double share = static_cast<double>(s.val_tokens) / static_cast<double>(s.tokens);
    TESSEL_CHECK(share <= 3 * options_.val_fraction)
        << "data prepare: --val-fraction " << options_.val_fraction << " put " << s.val_documents << " of "
        << s.documents << " documents, " << s.val_tokens << " of " << s.tokens << " tokens (" << 100 * share
        << "%), into validation: more than 3x what was asked, because the documents are few or of very different "
        << "sizes; " << hints;
  }

  // Each document's last round(f·n) tokens go to validation, the rest to training; each part
  // gets end-of-text where the format puts it (prepare.h).
  void split_by_tokens(std::vector<int32_t>&& doc, int32_t end_of_text) {
    const bool eot_first = train_->end_of_text_first();
    const auto n = static_cast<int64_t>(doc.size());
    const auto k = static_cast<int64_t>(std::llround(options_.val_fraction * static_cast<double>(n)));
    if (k <= 0 || k >= n) {
      write(doc, false);
      return;
    }
    std::vector<int32_t> train(doc.begin(), doc.end() - k), val(doc.end() - k, doc.end());
    if (eot_first) {
      val.insert(val.begin(), end_of_text);
    } else {
      train.push_back(end_of_text);
    }
    write(train, false);
    write(val, true);
  }

  // The previous document goes out; this one is held back as the pending one.
  void route(std::vector<int32_t>&& doc) {
    if (val_ != nullptr && options_.val_split_tokens) {
      ++ordinal_;
      seen_tokens_ += static_cast<int64_t>(doc.size());
      split_by_tokens(std::move(doc), tokenizers_.front()->end_of_text());
      return;
    }
    if (has_pending_) write(pending_, pending_to_val_);
    pending_ = std::move(doc);
    pending_to_val_ = val_ != nullptr && prepare_goes_to_val(options_.seed, ordinal_, options_.val_fraction);
    has_pending_ = true;
    ++ordinal_;
    seen_tokens_ += static_cast<int64_t>(pending_.size());
  }

  void write(const std::vector<int32_t>& tokens, bool to_val) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    (to_val ? val_ : train_)->add_document(tokens);
    (to_val ? summary_->val_documents : summary_->train_documents) += 1;
    (to_val ? summary_->val_tokens : summary_->train_tokens) += n;
    summary_->documents += 1;
    summary_->tokens += n;
  }

  const PrepareOptions& options_;
  PrepareSummary* summary_;
  std::vector<std::unique_ptr<Tokenizer>> tokenizers_;  // one per worker
  std::vector<std::string> batch_;                      // documents waiting to be tokenized
  size_t batch_bytes_ = 0;
  std::unique_ptr<DatasetWriter> train_;
  std::unique_ptr<DatasetWriter> val_;
  std::vector<int32_t> pending_;
  bool pending_to_val_ = false;
  bool has_pending_ = false;
  int64_t ordinal_ = 0;
  int64_t seen_tokens_ = 0;
};

class ProgressReporter {
 public:
  ProgressReporter(const PrepareProgressFn& fn, int64_t total_bytes) : fn_(fn) { state_.total_bytes = total_bytes; }
  void advance(int64_t bytes, const DocumentRouter& router, bool force = false) {
    state_.bytes_read += bytes;
    if (!fn_ || (!force && state_.bytes_read < next_report_)) return;
    next_report_ = state_.bytes_read + kProgressEveryBytes;
    state_.documents = router.documents();
    state_.tokens = router.tokens();
    fn_(state_);
  }
  void set_input(const std::string& input) { state_.input = input; }
  int64_t bytes_read() const { return state_.bytes_read; }

 private:
  const PrepareProgressFn& fn_;
  PrepareProgress state_;
  int64_t next_report_ = kProgressEveryBytes;
};

std::ifstream open_input(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TESSEL_CHECK(in.is_open()) << "cannot open input '" << path << "'";
  return in;
}

void read_whole_file(const std::string& path, DocumentRouter* router, ProgressReporter* progress) {
  std::ifstream in = open_input(path);
  std::string text;
  std::string chunk(kReadChunk, '\0');
  while (in) {
    in.read(&chunk[0], static_cast<std::streamsize>(chunk.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    text.append(chunk.data(), static_cast<size_t>(got));
    progress->advance(got, *router);
  }
  TESSEL_CHECK(!in.bad()) << "error reading input '" << path << "'";
  router->add(text);
}

void read_lines(const std::string& path, bool jsonl, DocumentRouter* router, ProgressReporter* progress) {
  std::ifstream in = open_input(path);
  std::string line, text;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    progress->advance(static_cast<int64_t>(line.size()) + 1, *router);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!jsonl) {
      router->add(line);  // an empty line is skipped (and counted) by the router
      continue;
    }
    if (is_blank(line)) continue;
    const std::string where = path + ":" + std::to_string(line_number);
    TESSEL_CHECK(json_string_field(line, "text", where, &text))
        << where << ": the JSON object has no \"text\" field; expected {\"text\": \"...\", ...} "
        << "on every line of a .jsonl input";
    router->add(text);
  }
  TESSEL_CHECK(!in.bad()) << "error reading input '" << path << "'";
}

void check_options(const PrepareOptions& o) {
  TESSEL_CHECK(!o.inputs.empty()) << "data prepare: no inputs; hint: pass --input FILE...";
  TESSEL_CHECK(!o.out_prefix.empty()) << "data prepare: no output prefix; hint: pass --out PREFIX";
  TESSEL_CHECK(o.format == "megatron" || o.format == "llmc")
      << "data prepare: unknown format '" << o.format << "'; expected megatron or llmc";
  TESSEL_CHECK(o.workers >= 0) << "data prepare: --workers must be >= 0 (0: all cores), got " << o.workers;
  TESSEL_CHECK(o.shard_tokens > 0) << "data prepare: --shard-tokens must be positive, got " << o.shard_tokens;
  TESSEL_CHECK(std::isfinite(o.val_fraction) && o.val_fraction >= 0 && o.val_fraction < 1)
      << "data prepare: val_fraction is " << o.val_fraction << "; expected a number in [0, 1)";
  for (const std::string& input : o.inputs) {
    TESSEL_CHECK(!ends_with(input, ".json"))
        << "data prepare: input '" << input << "' is a .json file, which would be tokenized as raw JSON text; "
        << "expected .txt (plain text) or .jsonl (one {\"text\": ...} object per line); hint: convert it to .jsonl, "
        << "e.g. jq -c '.[]' " << input << " > " << input.substr(0, input.size() - 5) << ".jsonl";
    TESSEL_CHECK(path_exists(input))
        << "data prepare: input '" << input << "' does not exist; hint: "
        << "check the path (inputs are .txt files or .jsonl with a \"text\" field per line)";
    TESSEL_CHECK(!std::filesystem::is_directory(input))
        << "data prepare: input '" << input << "' is a directory; hint: pass its files, e.g. --input " << input
        << "/*.txt";
  }
}

// Files an earlier prepare may have written for `prefix` in either format, with their records.
std::vector<std::string> existing_outputs(const std::string& prefix) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(prefix).parent_path().empty() ? fs::path(".") : fs::path(prefix).parent_path();
  const std::string base = fs::path(prefix).filename().string();
  std::vector<std::string> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    for (const std::string side : {"_train", "_val"}) {
      const std::string stem = base + side;
      if (name.compare(0, stem.size(), stem) != 0) continue;
      const std::string rest = name.substr(stem.size());
      const bool shard = rest.size() == 11 && rest[0] == '_' && ends_with(rest, ".bin") &&
                         std::all_of(rest.begin() + 1, rest.begin() + 7, [](char c) { return c >= '0' && c <= '9'; });
      if (rest == ".bin" || rest == ".idx" || rest == ".tessel.json" || shard) {
        found.push_back((fs::path(prefix).parent_path() / name).string());
      }
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

int64_t file_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  return in ? static_cast<int64_t>(in.tellg()) : 0;
}

}  // namespace

bool prepare_goes_to_val(uint64_t seed, int64_t ordinal, double val_fraction) {
  return hash_to_unit(hash_combine(seed, static_cast<uint64_t>(ordinal))) < val_fraction;
}

PrepareSummary prepare_dataset(const PrepareOptions& options, const PrepareProgressFn& progress) {
  check_options(options);
  // The output prefix's directory is created like any output directory of a run.
  const std::filesystem::path out_dir = std::filesystem::path(options.out_prefix).parent_path();
  if (!out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    TESSEL_CHECK(!ec) << "data prepare: cannot create output directory '" << out_dir.string() << "': " << ec.message()
                      << "; hint: choose a writable --out PREFIX";
  }
  const auto start = std::chrono::steady_clock::now();
  int64_t total_bytes = 0;
  for (const std::string& input : options.inputs) total_bytes += file_size(input);

  PrepareSummary summary;
  DocumentRouter router(options, &summary);
  ProgressReporter reporter(progress, total_bytes);
  for (const std::string& input : options.inputs) {
    reporter.set_input(input);
    if (ends_with(input, ".jsonl")) {
      read_lines(input, /*jsonl=*/true, &router, &reporter);
    } else if (options.split_lines) {
      read_lines(input, /*jsonl=*/false, &router, &reporter);
    } else {
      read_whole_file(input, &router, &reporter);
    }
    reporter.advance(0, router, /*force=*/true);
  }
  const std::vector<std::string> before = existing_outputs(options.out_prefix);
  router.finish();
  // What the earlier prepare wrote and this one did not rewrite is stale: removed now that the
  // new outputs are complete.
  for (const std::string& old : before) {
    if (std::find(summary.output_files.begin(), summary.output_files.end(), old) != summary.output_files.end()) {
      continue;
    }
    std::error_code ec;
    std::filesystem::remove(old, ec);
    TESSEL_CHECK(!ec) << "data prepare: cannot remove the stale output '" << old << "' of an earlier prepare into '"
                      << options.out_prefix << "': " << ec.message() << "; hint: remove it by hand, or it will be "
                      << "read as part of this dataset";
    summary.removed_files.push_back(old);
  }
  // getline counts a newline the last line may not have; report what the files hold.
  summary.bytes_read = std::min(reporter.bytes_read(), total_bytes);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace tessel
