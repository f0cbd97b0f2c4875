// One process at a time on a file: an exclusive flock(2) on a lock file beside it.
//
// The kernel drops a flock when its holder ends, however it ends (exit, crash, kill -9), so a
// lock file left behind by a dead process never blocks anyone: staleness needs no timeouts and
// no guessing from pids. The file's content (pid, host, command line, since when) is only
// there so that the process that finds it taken can name the holder in its message.
//
// The holder deletes the lock file when it lets go; acquiring checks that the file it locked
// is still the one at the path (a holder may have deleted it in between), so two processes
// never both believe they hold it. Advisory: only code that takes the lock is kept out.
// flock works on local file systems and, on Linux, over NFS (emulated with fcntl locks).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace chestlab {

// Who holds a lock, as its holder wrote it (fields "?" where the file did not say).
struct LockHolder {
  std::string pid = "?";
  std::string host = "?";
  std::string command = "?";
  std::string since = "?";

  // "pid 123 on host node1 since 2024-05-01T12:34:56Z: chestlab run --resume r.h5"
  std::string describe() const;
};

// Another process holds the lock. `what()` names the locked thing, the holder and what to do.
struct FileLockedError : std::runtime_error {
  FileLockedError(const std::string& message, std::string lock_path_, LockHolder holder_)
      : std::runtime_error(message), lock_path(std::move(lock_path_)), holder(std::move(holder_)) {}
  std::string lock_path;
  LockHolder holder;
};

// The file system cannot lock at all (flock fails with ENOLCK, ENOSYS or EOPNOTSUPP, as on
// Lustre mounted without flock). The message says how to go on where one writer is certain.
struct FileLockUnsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class FileLock {
 public:
  // Takes the lock on `lock_path` (creating the file and its folder), or throws
  // FileLockedError when another process (or another FileLock of this process) holds it:
  // "<what> is in use by another chestlab process (pid ... on host ... since ...: <command>)".
  // Other failures (no permission, no such folder) throw std::runtime_error naming the file;
  // a file system without flock throws FileLockUnsupported, unless the environment sets
  // CHESTLAB_NO_FILE_LOCKS=1: then the lock file is written but nothing is enforced.
  static FileLock acquire(const std::string& lock_path, const std::string& what);
  // The same, but nullopt (and the holder in `*holder` when given) instead of throwing when
  // another process holds it.
  static std::optional<FileLock> try_acquire(const std::string& lock_path, LockHolder* holder = nullptr);

  // What the lock file at `lock_path` says about its holder (as try_acquire reports it).
  static LockHolder read_holder(const std::string& lock_path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();  // deletes the lock file, then releases the lock

  const std::string& path() const { return path_; }

 private:
  FileLock(std::string path, int fd);
  void release() noexcept;
  std::string path_;
  int fd_ = -1;
  long owner_pid_ = 0;  // a forked child that never execs must not delete its parent's lock file
};

// This process's command line as one line (from /proc/self/cmdline; words with spaces or
// quotes shell-quoted), for lock files and messages.
std::string current_command_line();

}  // namespace chestlab
