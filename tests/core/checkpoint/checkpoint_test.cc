// Single-process checkpoints: round trip, rotation, verification, crafted directories.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "core/checkpoint/directory.h"
#include "core/checkpoint/reader.h"
#include "core/checkpoint/writer.h"
#include "core/io/crc32c.h"
#include "core/io/file.h"
#include "core/io/temp_dir.h"

using namespace tessel;
namespace fs = std::filesystem;

namespace {

ParameterStore small_store(uint64_t seed) {
  ParameterStore s(
      {{"a.weight", {4, 3}, 0, InitKind::kNormal, 1.0f, true}, {"b.bias", {5}, -1, InitKind::kNormal, 1.0f, false}});
  s.initialize(seed);
  return s;
}

std::string save_step(const std::string& root, const ParameterStore& s, int64_t step, int64_t keep,
                      const Tensor* m = nullptr) {
  CheckpointData d;
  d.params = &s;
  d.adam_m = m;
  d.adam_v = m;
  d.state.step = step;
  d.state.consumed_samples = static_cast<uint64_t>(step * 8);
  d.config_yaml = "run: {steps: 10}\n";
  return save_checkpoint(root, d, keep);
}

// Flips one byte `from_end` bytes before the end of the file.
void damage(const std::string& file, int64_t from_end) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-from_end, std::ios::end);
  char c = 0;
  f.read(&c, 1);
  f.seekp(-from_end, std::ios::end);
  c = static_cast<char>(c ^ 0x5a);
  f.write(&c, 1);
}

// Replaces every `from` in step_dir's manifest by `to`, of the same length so that no protobuf
// length changes, and seals it again with a matching crc32c: a crafted manifest, as someone
// who meant harm would write it, not a damaged one.
void craft_manifest(const std::string& step_dir, const std::string& from, const std::string& to) {
  REQUIRE(from.size() == to.size());
  const std::string path = step_dir + "/manifest.pb";
  std::string bytes = read_file(path);
  // ManifestFile: 08 <format version> 15 <crc32c, 4 bytes little-endian> 1a <length varint> <body>
  REQUIRE(bytes.size() > 9);
  REQUIRE((bytes[0] == 0x08 && bytes[2] == 0x15 && bytes[7] == 0x1a));
  size_t body = 8;
  while (static_cast<uint8_t>(bytes[body]) & 0x80) ++body;
  ++body;
  size_t replaced = 0;
  for (size_t at = bytes.find(from, body); at != std::string::npos; at = bytes.find(from, at + to.size())) {
    bytes.replace(at, from.size(), to);
    ++replaced;
  }
  REQUIRE(replaced > 0);
  const uint32_t crc = crc32c(bytes.data() + body, bytes.size() - body);
  for (int i = 0; i < 4; ++i) bytes[3 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  write_file_atomic(path, bytes);
}

std::string load_error(const std::string& path) {
  ParameterStore t = small_store(2);
  try {
    load_checkpoint(resolve_checkpoint(path), t, nullptr, nullptr);
  } catch (const Error& e) {
    return e.message();
  }
  return "(loaded)";
}

}  // namespace

TEST_CASE("a checkpoint round-trips weights, moments and the training state", "[cpu][checkpoint]") {
  TempDir dir("tessel_ckpt");
  ParameterStore s = small_store(1);
  Tensor m = Tensor::zeros({s.numel()}, DType::F32);
  m.data<float>()[3] = 0.25f;
  const std::string path = save_step(dir.path(), s, 7, 3, &m);
  CHECK(fs::path(path).filename() == "step_00000007");
  CHECK(latest_checkpoint(dir.path()) == path);

  ParameterStore t = small_store(2);
  Tensor m2 = Tensor::zeros({t.numel()}, DType::F32), v2 = Tensor::zeros({t.numel()}, DType::F32);
  const CheckpointMeta info = load_checkpoint(path, t, &m2, &v2);
  CHECK(info.state.step == 7);
  CHECK(info.state.consumed_samples == 56);
  CHECK(info.config_yaml == "run: {steps: 10}\n");
  CHECK(std::memcmp(t.params().raw(), s.params().raw(), s.params().nbytes()) == 0);
  CHECK(m2.data<float>()[3] == 0.25f);
  CHECK(v2.data<float>()[3] == 0.25f);
}

TEST_CASE("keep rotates by step number and never deletes the checkpoint just written", "[cpu][checkpoint]") {
  TempDir dir("tessel_rotate");
  ParameterStore s = small_store(1);
  for (int64_t step : {100000000, 200000000}) save_step(dir.path(), s, step, 0);  // another run's, names past 10^8
  save_step(dir.path(), s, 99999999, 0);
  // A new run in the same directory writes step 4, then step 8, keeping 2.
  save_step(dir.path(), s, 4, 2);
  const std::string eight = save_step(dir.path(), s, 8, 2);
  CHECK(fs::exists(eight));
  CHECK(latest_checkpoint(dir.path()) == eight);
  const std::vector<std::string> left = complete_checkpoints(dir.path());
  REQUIRE(left.size() == 2);
  CHECK(fs::path(left[0]).filename() == "step_00000008");  // ordered by step number
  CHECK(fs::path(left[1]).filename() == "step_200000000");
}

TEST_CASE("a damaged tensor fails verification naming the file and the tensor", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_damage");
  ParameterStore s = small_store(1);
  const std::string path = save_step(dir.path(), s, 3, 0);
  damage(path + "/rank_00000.safetensors", 2);  // a byte of the last piece's data
  ParameterStore t = small_store(2);
  try {
    load_checkpoint(path, t, nullptr, nullptr);
    FAIL("expected a verification error");
  } catch (const Error& e) {
    CHECK_THAT(e.message(), Catch::Contains("is damaged: file rank_00000.safetensors, tensor"));
    CHECK_THAT(e.message(), Catch::Contains("crc32c"));
    CHECK_THAT(e.message(), Catch::Contains(".weight'") || Catch::Contains(".bias'"));
  }
}

TEST_CASE("a checkpoint root without checkpoints is a clear error", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_none");
  CHECK(latest_checkpoint(dir.path()).empty());
  CHECK_THROWS_WITH(resolve_checkpoint(dir.path()), Catch::Contains("no checkpoint at"));
}

TEST_CASE("a truncated, missing or edited checkpoint file is named in the error", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_broken");
  ParameterStore s = small_store(1);
  ParameterStore t = small_store(2);
  auto error_of = [&](const std::string& path) {
    try {
      load_checkpoint(path, t, nullptr, nullptr);
    } catch (const Error& e) {
      return e.message();
    }
    return std::string("(no error)");
  };
  const std::string truncated = save_step(dir.path(), s, 1, 0);
  fs::resize_file(truncated + "/rank_00000.safetensors", fs::file_size(truncated + "/rank_00000.safetensors") - 10);
  CHECK_THAT(error_of(truncated),
             Catch::Contains("file rank_00000.safetensors has") && Catch::Contains("(truncated or overwritten)"));
  const std::string missing = save_step(dir.path(), s, 2, 0);
  fs::remove(missing + "/rank_00000.safetensors");
  CHECK_THAT(error_of(missing), Catch::Contains("file rank_00000.safetensors that its manifest lists is missing"));
  const std::string edited = save_step(dir.path(), s, 3, 0);
  damage(edited + "/manifest.pb", 20);
  CHECK_THAT(error_of(edited), Catch::Contains("manifest.pb is damaged or was edited"));
  const std::string unfinished = save_step(dir.path(), s, 4, 0);
  fs::remove(unfinished + "/manifest.pb");
  CHECK_THAT(error_of(unfinished), Catch::Contains("has no manifest.pb: it is not a complete checkpoint"));
  CHECK(complete_checkpoints(dir.path()).size() == 3);  // the one without a manifest is not listed
  CHECK(error_of(save_step(dir.path(), s, 5, 0)) == "(no error)");
}

TEST_CASE("a checkpoint of another model shape names the tensor and both shapes", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_shape");
  ParameterStore s = small_store(1);
  const std::string path = save_step(dir.path(), s, 1, 0);
  ParameterStore wider(
      {{"a.weight", {4, 5}, 0, InitKind::kNormal, 1.0f, true}, {"b.bias", {5}, -1, InitKind::kNormal, 1.0f, false}});
  CHECK_THROWS_WITH(load_checkpoint(path, wider, nullptr, nullptr),
                    Catch::Contains("tensor 'a.weight' is F32[4, 3] but this model expects F32[4, 5]"));
  const CheckpointReader reader(path);
  CHECK_THROWS_WITH(reader.check_model({s.entries()[0].spec}),
                    Catch::Contains("holds tensor 'b.bias' that this model does not have"));
  CHECK_NOTHROW(reader.check_model({s.entries()[0].spec, s.entries()[1].spec}));
}

TEST_CASE("a manifest naming a file outside its step directory is refused, naming the manifest key",
          "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_crafted");
  ParameterStore s = small_store(1);
  // Names as long as rank_00000.safetensors (22 bytes), so the crafted manifest stays well formed.
  const std::string rank_file = "rank_00000.safetensors";
  const std::string traversing = save_step(dir.path(), s, 1, 0);
  craft_manifest(traversing, rank_file, "../../../../etc/passwd");
  CHECK_THAT(load_error(traversing),
             Catch::StartsWith(traversing +
                               "/manifest.pb, files[0].name: \"../../../../etc/passwd\" has a '..' "
                               "component, which leads out of its directory; expected the plain name "
                               "of a file or directory inside " +
                               traversing + "; hint: the name was edited or crafted"));
  const std::string absolute = save_step(dir.path(), s, 2, 0);
  craft_manifest(absolute, rank_file, "/tmp/rank_0.safetensor");
  CHECK_THAT(load_error(absolute), Catch::Contains("files[0].name: \"/tmp/rank_0.safetensor\" is an absolute path"));
  const std::string nested = save_step(dir.path(), s, 3, 0);
  craft_manifest(nested, rank_file, "sub/rank_00000.safeten");
  CHECK_THAT(load_error(nested), Catch::Contains("\"sub/rank_00000.safeten\" holds a path separator"));
  // `tessel ckpt verify` and `inspect` open the same reader.
  CHECK_THROWS_WITH(CheckpointReader(traversing), Catch::Contains("has a '..' component"));
}

TEST_CASE("a manifest.pb or `latest` claiming gigabytes is refused before it is read", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_huge");
  ParameterStore s = small_store(1);
  const std::string root = dir.path() + "/checkpoints";
  const std::string step = save_step(root, s, 1, 0);
  fs::resize_file(step + "/manifest.pb", uint64_t{50} << 30);  // sparse: claimed, not stored
  CHECK_THAT(load_error(step), Catch::StartsWith(step + "/manifest.pb is 53687091200 bytes; expected at most "
                                                        "2147483648 for this file"));
  fs::resize_file(root + "/latest", uint64_t{50} << 30);
  CHECK_THAT(load_error(root), Catch::StartsWith(root + "/latest is 53687091200 bytes; expected at most 4096"));
}

TEST_CASE("a rank file symlinked out of its step directory, or in a loop, is refused", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_links");
  ParameterStore s = small_store(1);
  const std::string root = dir.path() + "/checkpoints";
  // A link that stays inside the step directory is an ordinary file.
  const std::string inside = save_step(root, s, 1, 0);
  fs::rename(inside + "/rank_00000.safetensors", inside + "/moved.safetensors");
  fs::create_symlink("moved.safetensors", inside + "/rank_00000.safetensors");
  CHECK(load_error(inside) == "(loaded)");
  // The same file, byte for byte, but outside: refused before it is opened.
  const std::string outside = save_step(root, s, 2, 0);
  fs::rename(outside + "/rank_00000.safetensors", dir.path() + "/elsewhere.safetensors");
  fs::create_symlink(dir.path() + "/elsewhere.safetensors", outside + "/rank_00000.safetensors");
  CHECK_THAT(load_error(outside), Catch::Contains("files[0].name: \"rank_00000.safetensors\" is a symlink that "
                                                  "leads to " +
                                                  dir.path() + "/elsewhere.safetensors, not inside " + outside));
  const std::string loop = save_step(root, s, 3, 0);
  fs::remove(loop + "/rank_00000.safetensors");
  fs::create_symlink("rank_00000.safetensors", loop + "/rank_00000.safetensors");
  CHECK_THAT(load_error(loop), Catch::Contains("files[0].name: \"rank_00000.safetensors\" is a symlink loop: "
                                               "following its links never reaches a file"));
  const std::string manifest_loop = save_step(root, s, 4, 0);
  fs::remove(manifest_loop + "/manifest.pb");
  fs::create_symlink("manifest.pb", manifest_loop + "/manifest.pb");
  CHECK_THAT(load_error(manifest_loop), Catch::Contains("\"manifest.pb\" is a symlink loop"));
  // A FIFO in place of the rank file would block the reader forever: refused before it is opened.
  const std::string fifo = save_step(root, s, 5, 0);
  fs::remove(fifo + "/rank_00000.safetensors");
  REQUIRE(::mkfifo((fifo + "/rank_00000.safetensors").c_str(), 0600) == 0);
  CHECK_THAT(load_error(fifo), Catch::Contains("\"rank_00000.safetensors\" is a FIFO, socket or device"));
}

TEST_CASE("`latest` naming a step directory outside its root, or a looping one, is refused",
          "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_latest");
  ParameterStore s = small_store(1);
  const std::string root = dir.path() + "/checkpoints";
  const std::string good = save_step(root, s, 1, 0);
  CHECK(latest_checkpoint(root) == good);
  // A step directory linked to itself: a listing passes over it, `latest` naming it is an error.
  fs::create_symlink("step_00000009", root + "/step_00000009");
  CHECK(complete_checkpoints(root) == std::vector<std::string>{good});
  write_file_atomic(root + "/latest", "step_00000009\n");
  CHECK_THAT(load_error(root), Catch::StartsWith(root + "/latest: \"step_00000009\" is a symlink loop"));
  CHECK_THAT(load_error(root + "/step_00000009"),
             Catch::StartsWith("checkpoint " + root + "/step_00000009 is a symlink loop"));
  write_file_atomic(root + "/latest", "../../step_00000001\n");
  CHECK_THAT(load_error(root), Catch::Contains("latest: \"../../step_00000001\" has a '..' component"));
  // A step directory linked from elsewhere: `latest` may not lead out of the root.
  const std::string other = save_step(dir.path() + "/other", s, 7, 0);
  fs::create_symlink(other, root + "/step_00000007");
  write_file_atomic(root + "/latest", "step_00000007\n");
  CHECK_THAT(load_error(root), Catch::Contains("latest: \"step_00000007\" is a symlink that leads to " + other));
  CHECK(complete_checkpoints(root) == std::vector<std::string>{good});
  fs::remove(root + "/latest");
  fs::create_symlink("latest", root + "/latest");
  CHECK_THAT(load_error(root), Catch::Contains(root + ": \"latest\" is a symlink loop"));
}
