#include "core/io/dir_lock.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "core/io/temp_dir.h"

namespace tessel {
namespace {

std::string lock_error(const std::string& dir) {
  try {
    DirLock second(dir, "run.out_dir");
  } catch (const Error& e) {
    return e.message();
  }
  return "(locked)";
}

TEST_CASE("a second DirLock on a directory is refused naming the holder, and is free once it closes", "[io][lock]") {
  TempDir dir("tessel_lock");
  const std::string out = dir.file("run");  // created by the lock
  {
    DirLock first(out, "run.out_dir");
    CHECK(first.held());
    CHECK(first.path() == out + "/.tessel.lock");
    // The lock file describes its holder.
    const JsonValue holder = parse_json(read_file(first.path()), first.path());
    CHECK(holder.find("pid")->as_int() == ::getpid());
    CHECK_FALSE(holder.find("host")->as_string().empty());
    CHECK(holder.find("started")->as_string().size() == 20);  // 2024-05-01T12:00:00Z
    CHECK_THAT(holder.find("command")->as_string(), Catch::Contains("tests_core"));
    // flock belongs to the open file: even this process cannot take it twice.
    CHECK_THAT(lock_error(out), Catch::StartsWith("run.out_dir " + out + " is in use by another run: pid " +
                                                  std::to_string(::getpid()) + " on host \"") &&
                                    Catch::Contains(", started " + holder.find("started")->as_string() + " (\"") &&
                                    Catch::Contains("tests_core") &&
                                    Catch::Contains("holds " + out + "/.tessel.lock") &&
                                    Catch::Contains("hint: use another run.out_dir, or stop that run first"));
    DirLock moved = std::move(first);
    CHECK(moved.held());
    CHECK_FALSE(first.held());  // NOLINT(bugprone-use-after-move): the moved-from state is what is tested
    CHECK_THAT(lock_error(out), Catch::Contains("is in use by another run"));
  }
  // Released with its descriptor; the file stays behind, harmless.
  CHECK(path_exists(out + "/.tessel.lock"));
  CHECK(lock_error(out) == "(locked)");
}

TEST_CASE("a killed holder's lock is released by the kernel: no stale lock", "[io][lock]") {
  TempDir dir("tessel_lock_kill");
  const std::string out = dir.file("run");
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child holds the lock until it is killed; it never returns into the test runner.
    ::close(ready[0]);
    try {
      DirLock lock(out, "run.out_dir");
      const char ok = 1;
      if (::write(ready[1], &ok, 1) != 1) ::_exit(2);
      for (;;) ::pause();
    } catch (...) {
      ::_exit(3);
    }
  }
  ::close(ready[1]);
  char ok = 0;
  REQUIRE(::read(ready[0], &ok, 1) == 1);
  ::close(ready[0]);
  CHECK_THAT(lock_error(out), Catch::Contains("is in use by another run: pid " + std::to_string(child) + " on host"));
  REQUIRE(::kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(lock_error(out) == "(locked)");
}

TEST_CASE("a DirLock that cannot create its directory names the key", "[io][lock][errors]") {
  CHECK_THROWS_WITH(DirLock("/proc/tessel_cannot_lock_here", "checkpoint.dir"),
                    Catch::Contains("cannot create directory '/proc/tessel_cannot_lock_here' (checkpoint.dir)") &&
                        Catch::Contains("hint: set checkpoint.dir to a writable path"));
}

}  // namespace
}  // namespace tessel
