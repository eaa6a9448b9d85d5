// prepare_dataset: documents from .txt/.jsonl, end-of-text per document, the deterministic
// train/val split, and the errors for bad inputs.
#include "data/prepare.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/io/file.h"
#include "data/byte_tokenizer.h"
#include "data/indexed_dataset.h"
#include "data/llmc_shard.h"
#include "tests/data/test_files.h"

namespace tessel {
namespace {

// The documents of a dataset, decoded with the byte tokenizer.
std::vector<std::string> documents_of(const std::string& prefix) {
  IndexedDataset ds(prefix);
  std::vector<std::string> docs;
  int64_t begin = 0;
  for (int64_t i = 0; i < ds.num_sequences(); ++i) {
    std::vector<int32_t> tokens(static_cast<size_t>(ds.sequence_length(i)));
    ds.read(begin, ds.sequence_length(i), tokens.data());
    begin += ds.sequence_length(i);
    docs.push_back(ByteTokenizer::decode(tokens));
  }
  return docs;
}

TEST_CASE("prepare turns .txt files and .jsonl records into documents ending in EOT", "[data]") {
  TempDir dir;
  testing::write_text(dir.file("a.txt"), "first file\nwith two lines\n");
  testing::write_text(dir.file("empty.txt"), "");
  testing::write_text(dir.file("b.txt"), "second");
  testing::write_text(dir.file("c.jsonl"),
                      "{\"id\": 1, \"text\": \"q\\\"uote\\nnl \\u00e9 \\ud83d\\ude00\"}\r\n"
                      "\n"
                      "{\"text\": \"\", \"id\": 2}\n"
                      "  {\"meta\": {\"k\": [1, 2]}, \"text\": \"last\"}");
  PrepareOptions options;
  options.inputs = {dir.file("a.txt"), dir.file("empty.txt"), dir.file("b.txt"), dir.file("c.jsonl")};
  options.out_prefix = dir.file("out");
  int progress_calls = 0;
  const PrepareSummary s = prepare_dataset(options, [&](const PrepareProgress& p) {
    ++progress_calls;
    CHECK(p.total_bytes > 0);
  });
  CHECK(progress_calls == 4);  // once at the end of each input
  const std::vector<std::string> expected = {"first file\nwith two lines\n<|endoftext|>", "second<|endoftext|>",
                                             "q\"uote\nnl \xc3\xa9 \xf0\x9f\x98\x80<|endoftext|>", "last<|endoftext|>"};
  CHECK(documents_of(dir.file("out_train")) == expected);
  CHECK(s.documents == 4);
  CHECK(s.train_documents == 4);
  CHECK(s.val_documents == 0);
  CHECK(s.skipped_documents == 2);  // empty.txt and the "" record
  int64_t tokens = 0;
  for (const auto& d : expected) tokens += static_cast<int64_t>(d.size()) - 13 + 1;
  CHECK(s.tokens == tokens);
  CHECK(s.train_prefix == dir.file("out_train"));
  CHECK(s.val_prefix.empty());
  CHECK(IndexedDataset(dir.file("out_train")).dtype() == DType::U16);
  CHECK_FALSE(std::filesystem::exists(dir.file("out_val.idx")));
  CHECK(s.output_files == std::vector<std::string>{dir.file("out_train.bin"), dir.file("out_train.idx"),
                                                   dir.file("out_train.tessel.json")});
}

TEST_CASE("prepare --split-lines makes each non-empty line a document", "[data]") {
  TempDir dir;
  testing::write_text(dir.file("lines.txt"), "alpha\r\n\nbeta\n  \ngamma");
  PrepareOptions options;
  options.inputs = {dir.file("lines.txt")};
  options.out_prefix = dir.file("l");
  options.split_lines = true;
  const PrepareSummary s = prepare_dataset(options);
  CHECK(documents_of(dir.file("l_train")) ==
        std::vector<std::string>{"alpha<|endoftext|>", "beta<|endoftext|>", "  <|endoftext|>", "gamma<|endoftext|>"});
  CHECK(s.skipped_documents == 1);
  CHECK(s.bytes_read == 21);
}

TEST_CASE("the train/val split is a deterministic function of seed and document", "[data]") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "doc " + std::to_string(i) + "\n";
  testing::write_text(dir.file("docs.txt"), text);
  PrepareOptions options;
  options.inputs = {dir.file("docs.txt")};
  options.split_lines = true;
  options.val_fraction = 0.2;
  options.out_prefix = dir.file("run1");
  const PrepareSummary s1 = prepare_dataset(options);
  options.out_prefix = dir.file("run2");
  prepare_dataset(options);

  // Same inputs and seed: byte-identical outputs.
  for (const char* f : {"_train.bin", "_train.idx", "_val.bin", "_val.idx"}) {
    CHECK(testing::read_bytes(dir.file(std::string("run1") + f)) ==
          testing::read_bytes(dir.file(std::string("run2") + f)));
  }
  // Exactly the documents the rule picks are in val, in order.
  std::vector<std::string> expect_train, expect_val;
  for (int i = 0; i < 200; ++i) {
    const std::string doc = "doc " + std::to_string(i) + "<|endoftext|>";
    (prepare_goes_to_val(1234, i, 0.2) ? expect_val : expect_train).push_back(doc);
  }
  CHECK(documents_of(dir.file("run1_val")) == expect_val);
  CHECK(documents_of(dir.file("run1_train")) == expect_train);
  CHECK(s1.val_documents == static_cast<int64_t>(expect_val.size()));
  CHECK(s1.val_documents > 20);  // about 40 expected; far from 0 or 200
  CHECK(s1.val_documents < 65);
  CHECK(s1.output_files.size() == 6);  // .bin, .idx and the .tessel.json record of each side

  // Another seed picks other documents.
  options.seed = 99;
  options.out_prefix = dir.file("run3");
  prepare_dataset(options);
  CHECK(documents_of(dir.file("run3_val")) != expect_val);
}

TEST_CASE("a val fraction gives a validation split near it, or an error with hints", "[data]") {
  TempDir dir;
  testing::write_text(dir.file("two.txt"), "one\ntwo\n");
  PrepareOptions options;
  options.inputs = {dir.file("two.txt")};
  options.split_lines = true;
  options.out_prefix = dir.file("p");
  // Two documents: the last goes to validation when none did, and train is never left empty...
  options.val_fraction = 0.4;
  const PrepareSummary s = prepare_dataset(options);
  CHECK(s.val_documents == 1);
  CHECK(s.train_documents == 1);
  std::vector<std::string> both = documents_of(dir.file("p_train"));
  both.push_back(documents_of(dir.file("p_val")).at(0));
  std::sort(both.begin(), both.end());
  CHECK(both == std::vector<std::string>{"one<|endoftext|>", "two<|endoftext|>"});
  options.val_fraction = 0.999999999;
  options.out_prefix = dir.file("q");
  const PrepareSummary q = prepare_dataset(options);
  CHECK(q.train_documents == 1);
  CHECK(q.val_documents == 1);
  // ... but half the tokens for a fraction of 0.02 is refused, and nothing is written.
  options.val_fraction = 0.02;
  options.out_prefix = dir.file("r");
  CHECK_THAT(testing::error_message([&] { prepare_dataset(options); }),
             Catch::Contains("put 1 of 2 documents, 4 of 8 tokens (50%), into validation: more than 3x what was "
                             "asked") &&
                 Catch::Contains("--val-split tokens") && Catch::Contains("--split-lines"));
  CHECK_FALSE(std::filesystem::exists(dir.file("r_train.bin")));

  // One large .txt: by documents it cannot be split...
  std::string text;
  for (int i = 0; i < 20; ++i) text += "line " + std::to_string(i) + " of one big file\n";
  testing::write_text(dir.file("big.txt"), text);
  options.inputs = {dir.file("big.txt")};
  options.split_lines = false;
  options.out_prefix = dir.file("big");
  CHECK_THAT(
      testing::error_message([&] { prepare_dataset(options); }),
      Catch::Contains("left the validation split empty: 1 document(s)") && Catch::Contains("--val-split tokens"));
  // ... by tokens, its last 2% go to validation and the rest trains, each ending in end-of-text.
  options.val_split_tokens = true;
  const PrepareSummary t = prepare_dataset(options);
  const auto n = static_cast<int64_t>(text.size()) + 1;
  const auto k = static_cast<int64_t>(std::llround(0.02 * static_cast<double>(n)));
  REQUIRE(k >= 2);
  CHECK(t.val_tokens == k);
  CHECK(t.train_tokens == n - k + 1);
  CHECK(documents_of(dir.file("big_train")) ==
        std::vector<std::string>{text.substr(0, static_cast<size_t>(n - k)) + "<|endoftext|>"});
  CHECK(documents_of(dir.file("big_val")) ==
        std::vector<std::string>{text.substr(static_cast<size_t>(n - k)) + "<|endoftext|>"});
}

TEST_CASE("prepare into a used prefix removes the earlier outputs it does not rewrite", "[data]") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 100; ++i) text += "doc " + std::to_string(i) + "\n";
  testing::write_text(dir.file("docs.txt"), text);
  PrepareOptions options;
  options.inputs = {dir.file("docs.txt")};
  options.split_lines = true;
  options.val_fraction = 0.2;
  options.out_prefix = dir.file("d");
  prepare_dataset(options);
  REQUIRE(std::filesystem::exists(dir.file("d_val.idx")));
  // Again without validation: the old _val would overlap the new _train, so it goes.
  options.val_fraction = 0;
  const PrepareSummary s = prepare_dataset(options);
  CHECK(s.removed_files ==
        std::vector<std::string>{dir.file("d_val.bin"), dir.file("d_val.idx"), dir.file("d_val.tessel.json")});
  CHECK_FALSE(std::filesystem::exists(dir.file("d_val.bin")));
  CHECK(std::filesystem::exists(dir.file("d_train.bin")));
  // A .json input would be tokenized as JSON text: refused, with the .jsonl hint.
  testing::write_text(dir.file("records.json"), "[{\"text\": \"a\"}]");
  options.inputs = {dir.file("records.json")};
  CHECK_THAT(
      testing::error_message([&] { prepare_dataset(options); }),
      Catch::Contains("is a .json file, which would be tokenized as raw JSON text") && Catch::Contains(".jsonl"));
}

TEST_CASE("prepare errors: missing input, bad options, unavailable tokenizer, bad JSONL", "[data]") {
  TempDir dir;
  testing::write_text(dir.file("ok.txt"), "text");
  PrepareOptions options;
  options.out_prefix = dir.file("o");
  options.inputs = {dir.file("ok.txt"), dir.file("missing.txt")};
  CHECK_THAT(testing::error_message([&] { prepare_dataset(options); }),
             Catch::Contains(dir.file("missing.txt")) && Catch::Contains("does not exist"));
  CHECK_FALSE(std::filesystem::exists(dir.file("o_train.bin.tmp")));

  options.inputs = {dir.file("ok.txt")};
  options.tokenizer = TokenizerKind::kGpt2;
  options.tokenizer_dir = dir.file("no_tokenizer_here");
  CHECK_THAT(testing::error_message([&] { prepare_dataset(options); }), Catch::Contains("encoder.json' not found"));
  options.tokenizer = TokenizerKind::kBytes;
  options.val_fraction = 1.0;
  CHECK_THAT(testing::error_message([&] { prepare_dataset(options); }), Catch::Contains("[0, 1)"));
  options.val_fraction = 0;

  testing::write_text(dir.file("bad.jsonl"), "{\"text\": \"fine\"}\n{\"text\": \"broken}\n");
  options.inputs = {dir.file("bad.jsonl")};
  CHECK_THAT(testing::error_message([&] { prepare_dataset(options); }),
             Catch::Contains(dir.file("bad.jsonl") + ":2: byte"));
  // A failed run leaves no outputs or temporaries.
  CHECK_FALSE(std::filesystem::exists(dir.file("o_train.bin")));
  CHECK_FALSE(std::filesystem::exists(dir.file("o_train.bin.tmp")));

  testing::write_text(dir.file("notext.jsonl"), "{\"body\": \"x\"}\n");
  options.inputs = {dir.file("notext.jsonl")};
  CHECK_THAT(testing::error_message([&] { prepare_dataset(options); }),
             Catch::Contains("notext.jsonl:1") && Catch::Contains("no \"text\" field"));

  testing::write_text(dir.file("blank.txt"), "");
  options.inputs = {dir.file("blank.txt")};
  CHECK_THAT(testing::error_message([&] { prepare_dataset(options); }), Catch::Contains("no documents"));
}

TEST_CASE("prepare --format llmc writes GPT-2 llm.c shards with end-of-text before each document", "[data]") {
  TempDir dir;
  testing::write_text(dir.file("a.txt"), "hello");
  testing::write_text(dir.file("b.txt"), "world!");
  PrepareOptions options;
  options.inputs = {dir.file("a.txt"), dir.file("b.txt")};
  options.out_prefix = dir.file("sh");
  options.format = "llmc";
  options.shard_tokens = 5;  // 13 tokens: shards of 5, 5, 3; documents cross shard boundaries
  const PrepareSummary s = prepare_dataset(options);
  REQUIRE(s.output_files.size() == 4);  // 3 shards and the record
  CHECK(s.output_files[0] == dir.file("sh_train_000000.bin"));
  CHECK(s.output_files[3] == dir.file("sh_train.tessel.json"));
  std::vector<int32_t> all;
  for (const std::string& f : std::vector<std::string>(s.output_files.begin(), s.output_files.begin() + 3)) {
    LlmcShard shard(f);
    CHECK(shard.magic() == LlmcShard::kMagicGpt2);
    CHECK(shard.num_tokens() <= 5);
    std::vector<int32_t> part(static_cast<size_t>(shard.num_tokens()));
    shard.read(0, shard.num_tokens(), part.data());
    all.insert(all.end(), part.begin(), part.end());
  }
  const std::vector<int32_t> expected = {256, 'h', 'e', 'l', 'l', 'o', 256, 'w', 'o', 'r', 'l', 'd', '!'};
  CHECK(all == expected);
  options.format = "parquet";
  CHECK_THAT(testing::error_message([&] { prepare_dataset(options); }), Catch::Contains("unknown format 'parquet'"));
}

TEST_CASE("prepare output is byte-identical for 1 and 3 workers, across batches", "[data]") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "line " + std::to_string(i * 7919 % 1000) + " of many\n";
  testing::write_text(dir.file("lines.txt"), text);
  auto run = [&](int workers, const std::string& out) {
    PrepareOptions options;
    options.inputs = {dir.file("lines.txt")};
    options.split_lines = true;
    options.val_fraction = 0.1;
    options.workers = workers;
    options.out_prefix = dir.file(out);
    return prepare_dataset(options);
  };
  const PrepareSummary one = run(1, "one"), three = run(3, "three");
  CHECK(one.documents == 3000);
  CHECK(three.val_documents == one.val_documents);
  for (const char* suffix : {"_train.bin", "_train.idx", "_val.bin", "_val.idx"}) {
    INFO(suffix);
    CHECK(read_file(dir.file(std::string("one") + suffix)) == read_file(dir.file(std::string("three") + suffix)));
  }
}

}  // namespace
}  // namespace tessel
