#include "core/io/file.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/io/temp_dir.h"

namespace tessel {
namespace {

TEST_CASE("write_file_atomic replaces a file and leaves no temporary behind", "[io][file]") {
  TempDir dir;
  const std::string path = dir.file("a.bin");
  CHECK_FALSE(path_exists(path));
  write_file_atomic(path, "first");
  write_file_atomic(path, std::string("second\0x", 8));
  CHECK(read_file(path) == std::string("second\0x", 8));
  CHECK_FALSE(path_exists(path + ".tmp"));
}

TEST_CASE("an uncommitted AtomicFileWriter leaves the old file untouched", "[io][file]") {
  TempDir dir;
  const std::string path = dir.file("ckpt");
  write_file_atomic(path, "old");
  {
    AtomicFileWriter writer(path);
    writer.append("new data", 8);
    CHECK(writer.bytes_written() == 8);
  }  // destroyed without commit, as when an exception unwinds a checkpoint save
  CHECK(read_file(path) == "old");
  CHECK_FALSE(path_exists(path + ".tmp"));
}

TEST_CASE("MappedFile maps the bytes of a file", "[io][file]") {
  TempDir dir;
  const std::string path = dir.file("m.bin");
  write_file_atomic(path, "hello mmap");
  MappedFile m(path);
  REQUIRE(m.size() == 10);
  CHECK(std::memcmp(m.data(), "hello mmap", 10) == 0);
  MappedFile moved(std::move(m));
  CHECK(moved.size() == 10);
  CHECK(m.data() == nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is what is tested

  write_file_atomic(dir.file("empty"), "");
  MappedFile e(dir.file("empty"));
  CHECK(e.size() == 0);
}

TEST_CASE("file errors name the path and the system's reason", "[io][file]") {
  TempDir dir;
  const std::string missing = dir.file("missing.bin");
  try {
    read_file(missing);
    FAIL("read_file of a missing file did not throw");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains(missing) && Catch::Contains("No such file"));
  }
  CHECK_THROWS_WITH(MappedFile(missing), Catch::Contains(missing));
  CHECK_THROWS_WITH(write_file_atomic(dir.file("no/such/dir/x"), "x"), Catch::Contains("no/such/dir/x.tmp"));
}

TEST_CASE("read_file refuses a file larger than the caller allows before reading it", "[io][file]") {
  TempDir dir;
  const std::string path = dir.file("huge");
  write_file_atomic(path, "x");
  std::filesystem::resize_file(path, uint64_t{50} << 30);  // sparse: 50 GiB claimed, nothing stored
  CHECK_THROWS_WITH(
      read_file(path, 4096),
      Catch::Equals(path + " is 53687091200 bytes; expected at most 4096 for this file; hint: the file is "
                           "damaged or was crafted"));
  write_file_atomic(path, "12345");
  CHECK(read_file(path, 5) == "12345");
  CHECK_THROWS_WITH(read_file(path, 4), Catch::Contains("is 5 bytes; expected at most 4"));
}

TEST_CASE("parent_directory follows dirname", "[io][file]") {
  CHECK(parent_directory("a/b/c") == "a/b");
  CHECK(parent_directory("c") == ".");
  CHECK(parent_directory("/c") == "/");
}

TEST_CASE("TempDir removes its contents on destruction", "[io][file]") {
  std::string path;
  {
    TempDir dir("tessel-test");
    path = dir.path();
    write_file_atomic(dir.file("x"), "x");
    CHECK(path_exists(dir.file("x")));
  }
  CHECK_FALSE(path_exists(path));
}

// The message contained_path gives for `name` in `dir`, or "(accepted)".
std::string containment_error(const std::string& dir, const std::string& name) {
  try {
    contained_path(dir, name, "index.json, weight_map[\"w\"]");
  } catch (const Error& e) {
    return e.message();
  }
  return "(accepted)";
}

TEST_CASE("contained_path refuses names that leave their directory, naming the file and key", "[io][file]") {
  TempDir dir("tessel_contained");
  const std::string d = dir.path();
  CHECK(contained_path(d, "model.safetensors", "x") == d + "/model.safetensors");  // need not exist
  CHECK(contained_path(d, "..data", "x") == d + "/..data");                        // a name, not a component
  CHECK_THAT(containment_error(d, "../secret"),
             Catch::StartsWith("index.json, weight_map[\"w\"]: \"../secret\" has a '..' component, which leads "
                               "out of its directory; expected the plain name of a file or directory inside " +
                               d) &&
                 Catch::Contains("hint: the name was edited or crafted"));
  CHECK_THAT(containment_error(d, ".."), Catch::Contains("\"..\" has a '..' component"));
  CHECK_THAT(containment_error(d, "a/../../b"), Catch::Contains("has a '..' component"));
  CHECK_THAT(containment_error(d, "/etc/passwd"), Catch::Contains("\"/etc/passwd\" is an absolute path"));
  CHECK_THAT(containment_error(d, "sub/x"),
             Catch::Contains("\"sub/x\" holds a path separator where a plain file name belongs"));
  CHECK_THAT(containment_error(d, ""), Catch::Contains("\"\" is empty"));
  CHECK_THAT(containment_error(d, "."), Catch::Contains("is the directory itself"));
  CHECK_THAT(containment_error(d, std::string("a\0/../b", 7)), Catch::Contains("\"a\\x00/../b\" holds a NUL byte"));
  // A crafted name never breaks the one-line error: control bytes are escaped.
  CHECK_THAT(containment_error(d, "../a\nb"), Catch::Contains("\"../a\\nb\""));
}

TEST_CASE("contained_path follows symlinks: inside is fine, outside or a loop is refused", "[io][file]") {
  TempDir dir("tessel_links");
  namespace fs = std::filesystem;
  const std::string d = dir.path();
  fs::create_directories(d + "/in/sub");
  write_file_atomic(d + "/in/sub/real", "x");
  write_file_atomic(d + "/secret", "x");
  fs::create_symlink("sub/real", d + "/in/inside");
  fs::create_symlink("../secret", d + "/in/outside");
  fs::create_symlink(d + "/secret", d + "/in/absolute");
  fs::create_symlink("loop", d + "/in/loop");
  fs::create_symlink("b", d + "/in/a");
  fs::create_symlink("a", d + "/in/b");
  fs::create_symlink(".", d + "/in/self");
  const std::string in = d + "/in";
  CHECK(contained_path(in, "inside", "x") == in + "/inside");
  CHECK_THAT(containment_error(in, "outside"),
             Catch::Contains("\"outside\" is a symlink that leads to " + d + "/secret, not inside " + in));
  CHECK_THAT(containment_error(in, "absolute"), Catch::Contains("is a symlink that leads to " + d + "/secret"));
  CHECK_THAT(containment_error(in, "self"), Catch::Contains("is a symlink that leads to " + in + ", not inside"));
  CHECK_THAT(containment_error(in, "loop"),
             Catch::Contains("\"loop\" is a symlink loop: following its links never reaches a file") &&
                 Catch::Contains("hint: replace the link with the file it should name"));
  CHECK_THAT(containment_error(in, "a"), Catch::Contains("\"a\" is a symlink loop"));
  // The directory itself a loop: named as such, not blamed on the name.
  fs::create_symlink("dloop", d + "/dloop");
  CHECK_THAT(containment_error(d + "/dloop", "x"), Catch::Contains("directory " + d + "/dloop is a symlink loop"));
  // A FIFO would block whoever opens it; it is refused before anyone does.
  REQUIRE(::mkfifo((in + "/fifo").c_str(), 0600) == 0);
  CHECK_THAT(containment_error(in, "fifo"), Catch::Contains("\"fifo\" is a FIFO, socket or device"));
}

TEST_CASE("path_is_inside compares resolved paths component by component", "[io][file]") {
  TempDir dir("tessel_inside");
  const std::string d = dir.path();
  std::filesystem::create_directories(d + "/a/b");
  std::filesystem::create_directories(d + "/ab");
  CHECK(path_is_inside(d + "/a/b", d + "/a"));
  CHECK(path_is_inside(d + "/a/b/../b/c", d + "/a"));
  CHECK_FALSE(path_is_inside(d + "/ab", d + "/a"));
  CHECK_FALSE(path_is_inside(d + "/a", d + "/a"));
  CHECK_FALSE(path_is_inside(d + "/a/../ab", d + "/a"));
  std::filesystem::create_symlink("loop", d + "/loop");
  CHECK_THROWS_WITH(path_is_inside(d + "/loop", d), Catch::Contains("path " + d + "/loop is a symlink loop"));
}

}  // namespace
}  // namespace tessel
