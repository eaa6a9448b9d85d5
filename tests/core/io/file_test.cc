#include "core/io/file.h"

#include <catch2/catch.hpp>

#include <cstring>

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

}  // namespace
}  // namespace tessel
