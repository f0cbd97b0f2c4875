// One writer per run file: FileLock (flock on `<file>.lock`) and RunFile holding it. Other
// processes are forked children that take the lock themselves (each opens its own file
// description, exactly as a separate `chestlab` process does).
#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "chestlab/engine/file_lock.h"
#include "chestlab/engine/runfile.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using Catch::Matchers::Contains;

namespace {
// When set, flock(2) fails with this errno: a file system without locks, for one test.
std::atomic<int> g_flock_fails_with{0};
}  // namespace

// Interposes libc's flock for this test program (the engine library resolves it here first);
// it passes every call through unless a test sets g_flock_fails_with.
extern "C" int flock(int fd, int operation) {
  using Flock = int (*)(int, int);
  static const Flock real = reinterpret_cast<Flock>(dlsym(RTLD_NEXT, "flock"));
  if (const int error = g_flock_fails_with.load()) {
    errno = error;
    return -1;
  }
  return real(fd, operation);
}

namespace {

std::string this_host() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

RunMeta lock_meta() {
  RunMeta meta;
  meta.experiment = "locks";
  meta.run_id = "r";
  meta.config_hash = "0123456789ab";
  meta.monitor = "dice";
  return meta;
}

std::string make_run(const fs::path& dir) {
  const std::string path = (dir / "r.h5").string();
  RunFile::create(path, lock_meta(), "[experiment]\nname = \"locks\"\n", Environment{}).transaction([](RunWriter& w) {
    w.begin_fold(0, {"dice"}, {"a"}, {"b"});
  });
  return path;
}

// Files beside the run file that a transaction writes and should have removed.
std::vector<std::string> temporaries_of(const std::string& run_path) {
  std::vector<std::string> out;
  const std::string name = fs::path(run_path).filename().string();
  for (const auto& e : fs::directory_iterator(fs::path(run_path).parent_path())) {
    const std::string other = e.path().filename().string();
    if (other != name && other.rfind(name + ".tmp", 0) == 0) out.push_back(other);
  }
  return out;
}

// A child process: waits for a byte on `go`, tries to open the run file for writing, writes
// one byte to `done` (1 = got it, 2 = refused) and, when it got it, keeps it for `hold_ms`.
// Its exit code says the same (0 got it, 1 refused with FileLockedError, 3 other failure);
// a refusal's message goes to `message_file`.
[[noreturn]] void writer_child(int go, int done, const std::string& run_path, const std::string& message_file,
                               int hold_ms) {
  char byte = 0;
  if (read(go, &byte, 1) != 1) _exit(4);
  try {
    {
      RunFile file = RunFile::open(run_path);
      byte = 1;
      if (write(done, &byte, 1) != 1) _exit(4);
      std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
      file.transaction([](RunWriter& w) { w.set_status(RunStatus::Complete); });
    }  // lets go as a process that ends normally does
    _exit(0);
  } catch (const FileLockedError& e) {
    std::ofstream(message_file) << e.what();
    byte = 2;
    if (write(done, &byte, 1) != 1) _exit(4);
    _exit(1);
  } catch (...) {
    _exit(3);
  }
}

int exit_code_of(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("two writers started together: one gets the run file, the other is refused at once naming it",
          "[filelock]") {
  const fs::path dir = test::scratch_dir("filelock_two_writers");
  const std::string path = make_run(dir);
  int go[2], done[2];
  REQUIRE(pipe(go) == 0);
  REQUIRE(pipe(done) == 0);
  pid_t pids[2];
  for (int i = 0; i < 2; ++i) {
    pids[i] = fork();
    REQUIRE(pids[i] >= 0);
    if (pids[i] == 0)
      writer_child(go[0], done[1], path, (dir / ("message" + std::to_string(i))).string(), 3000);
  }
  const char start[2] = {1, 1};
  REQUIRE(write(go[1], start, 2) == 2);  // both are released at the same instant
  const auto started = std::chrono::steady_clock::now();
  char first = 0, second = 0;
  REQUIRE(read(done[0], &first, 1) == 1);
  REQUIRE(read(done[0], &second, 1) == 1);
  // One got it, the other was refused (not made to wait: the winner holds it for 3 s).
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(seconds < 2.5);
  CHECK(((first == 1 && second == 2) || (first == 2 && second == 1)));

  const int codes[2] = {exit_code_of(pids[0]), exit_code_of(pids[1])};
  INFO("exit codes " << codes[0] << " " << codes[1]);
  REQUIRE(((codes[0] == 0 && codes[1] == 1) || (codes[0] == 1 && codes[1] == 0)));
  const int loser = codes[0] == 1 ? 0 : 1, winner = 1 - loser;
  const std::string message = slurp((dir / ("message" + std::to_string(loser))).string());
  CHECK_THAT(message, Contains("run file " + path + " is in use by another chestlab process"));
  CHECK_THAT(message, Contains("pid " + std::to_string(pids[winner]) + " on host " + this_host()));
  CHECK_THAT(message, Contains("test_core"));  // the holder's command line
  CHECK(read_run(path, LoadWeights::No).status == RunStatus::Complete);  // the winner's write landed
  CHECK(temporaries_of(path).empty());
  CHECK_FALSE(fs::exists(path + ".lock"));  // the winner removed it when it let go
  for (int fd : {go[0], go[1], done[0], done[1]}) close(fd);
}

TEST_CASE("a lock file left by a killed writer does not block, and its temporaries are cleared", "[filelock]") {
  const fs::path dir = test::scratch_dir("filelock_stale");
  const std::string path = make_run(dir);
  int go[2], done[2];
  REQUIRE(pipe(go) == 0);
  REQUIRE(pipe(done) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) writer_child(go[0], done[1], path, (dir / "message").string(), 60000);
  const char start = 1;
  REQUIRE(write(go[1], &start, 1) == 1);
  char got = 0;
  REQUIRE(read(done[0], &got, 1) == 1);
  REQUIRE(got == 1);
  // While it lives, a writer in this process is refused with the child named.
  CHECK_THROWS_WITH(RunFile::open(path), Contains("pid " + std::to_string(child)));
  REQUIRE(kill(child, SIGKILL) == 0);
  REQUIRE(exit_code_of(child) == 128 + SIGKILL);

  // The killed process left its lock file (naming it) and, as a killed transaction would,
  // temporaries: the fixed name of older versions and a unique one.
  REQUIRE(fs::exists(path + ".lock"));
  CHECK(FileLock::read_holder(path + ".lock").pid == std::to_string(child));
  std::ofstream(path + ".tmp") << "left by an older chestlab";
  std::ofstream(path + ".tmp-otherhost-99-0") << "left by a killed transaction";
  std::ofstream((dir / "unrelated.tmp").string()) << "not ours";

  RunFile again = RunFile::open(path);  // must not throw
  again.transaction([](RunWriter& w) { w.set_status(RunStatus::Interrupted); });
  CHECK(read_run(path, LoadWeights::No).status == RunStatus::Interrupted);
  CHECK(temporaries_of(path).empty());
  CHECK(fs::exists(dir / "unrelated.tmp"));
  CHECK(FileLock::read_holder(path + ".lock").pid == std::to_string(getpid()));
  for (int fd : {go[0], go[1], done[0], done[1]}) close(fd);
}

TEST_CASE("a run file is one writer's also within a process, until that writer is gone", "[filelock]") {
  const fs::path dir = test::scratch_dir("filelock_in_process");
  const std::string path = make_run(dir);
  {
    RunFile first = RunFile::open(path);
    CHECK_THROWS_AS(RunFile::open(path), FileLockedError);
    { RunFile copy = first; }  // copies share the one lock: dropping one keeps it
    CHECK(fs::exists(path + ".lock"));
    CHECK_THROWS_AS(RunFile::open(path), FileLockedError);
  }
  CHECK_FALSE(fs::exists(path + ".lock"));
  CHECK_NOTHROW(RunFile::open(path));

  // A new run file is locked from its creation: nothing else may write it meanwhile.
  const std::string fresh = (dir / "fresh.h5").string();
  RunFile created = RunFile::create(fresh, lock_meta(), "", Environment{});
  CHECK_THROWS_WITH(RunFile::open(fresh), Contains("run file " + fresh + " is in use"));
}

TEST_CASE("FileLock: release deletes the file, a forked copy does not, and odd content is only shown",
          "[filelock]") {
  const fs::path dir = test::scratch_dir("filelock_unit");
  const std::string lock_path = (dir / "sub" / "x.lock").string();

  SECTION("the holder is named from the file; a second try in this process is refused") {
    FileLock lock = FileLock::acquire(lock_path, "thing x");
    LockHolder holder;
    CHECK_FALSE(FileLock::try_acquire(lock_path, &holder).has_value());
    CHECK(holder.pid == std::to_string(getpid()));
    CHECK(holder.host == this_host());
    CHECK_THAT(holder.command, Contains("test_core"));
    CHECK(holder.since.size() == 20);
    try {
      FileLock::acquire(lock_path, "thing x");
      FAIL("a second acquire must throw");
    } catch (const FileLockedError& e) {
      CHECK(e.lock_path == lock_path);
      CHECK(e.holder.pid == holder.pid);
      CHECK_THAT(e.what(), Contains("thing x is in use by another chestlab process (pid " + holder.pid));
    }
  }
  SECTION("moving keeps one lock; the last owner's release deletes the file") {
    std::optional<FileLock> a = FileLock::acquire(lock_path, "x");
    FileLock b = std::move(*a);
    a.reset();  // the moved-from shell releases nothing
    CHECK(fs::exists(lock_path));
    CHECK_FALSE(FileLock::try_acquire(lock_path).has_value());
  }
  SECTION("a forked child that drops its copy leaves the parent's lock in place") {
    std::optional<FileLock> held = FileLock::acquire(lock_path, "x");
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      held.reset();
      _exit(0);
    }
    REQUIRE(exit_code_of(child) == 0);
    CHECK(fs::exists(lock_path));
    CHECK_FALSE(FileLock::try_acquire(lock_path).has_value());
    held.reset();
    CHECK_FALSE(fs::exists(lock_path));
  }
  SECTION("whatever a stale lock file holds, it is taken over; a held one's content is shown printable") {
    fs::create_directories(fs::path(lock_path).parent_path());
    std::string junk(20000, '\0');
    for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>(i * 37 + 11);
    junk.replace(0, 20, "pid \x1b[31mred\x07\nhost");
    std::ofstream(lock_path, std::ios::binary) << junk;
    const LockHolder shown = FileLock::read_holder(lock_path);
    for (const std::string* field : {&shown.pid, &shown.host, &shown.command, &shown.since}) {
      CHECK(field->size() <= 1000);
      for (char c : *field) CHECK(static_cast<unsigned char>(c) >= 0x20);
    }
    CHECK(shown.pid == "?[31mred?");
    const int other = open(lock_path.c_str(), O_RDWR);  // "another process" holding it
    REQUIRE(other >= 0);
    REQUIRE(flock(other, LOCK_EX | LOCK_NB) == 0);
    CHECK_THROWS_WITH(FileLock::acquire(lock_path, "x"), Contains("pid ?[31mred? on host ?"));
    close(other);
    CHECK(FileLock::try_acquire(lock_path).has_value());
  }
}

TEST_CASE("a file system without flock is an error saying what to do, unless CHESTLAB_NO_FILE_LOCKS=1",
          "[filelock]") {
  const fs::path dir = test::scratch_dir("filelock_unsupported");
  const std::string lock_path = (dir / "x.lock").string();
  struct Restore {
    ~Restore() {
      g_flock_fails_with = 0;
      unsetenv("CHESTLAB_NO_FILE_LOCKS");
    }
  } restore;
  unsetenv("CHESTLAB_NO_FILE_LOCKS");
  g_flock_fails_with = ENOSYS;  // Lustre without flock answers so
  CHECK_THROWS_AS(FileLock::acquire(lock_path, "x"), FileLockUnsupported);
  CHECK_THROWS_WITH(FileLock::try_acquire(lock_path),
                    Contains("does not support flock") && Contains("CHESTLAB_NO_FILE_LOCKS=1"));
  g_flock_fails_with = EWOULDBLOCK;  // other errors stay what they were: held by someone
  CHECK_FALSE(FileLock::try_acquire(lock_path).has_value());

  g_flock_fails_with = ENOLCK;
  setenv("CHESTLAB_NO_FILE_LOCKS", "1", 1);
  {
    FileLock unenforced = FileLock::acquire(lock_path, "x");
    CHECK(FileLock::read_holder(lock_path).pid == std::to_string(getpid()));
  }
  CHECK_FALSE(fs::exists(lock_path));
}
