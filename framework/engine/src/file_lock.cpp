// FileLock: flock(2) on a lock file whose content names the holder. See file_lock.h.
#include "chestlab/engine/file_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

namespace fs = std::filesystem;

namespace chestlab {

namespace {

// Lock files are written by other processes and may hold anything: what reaches a message is
// printable and bounded.
constexpr std::size_t kMaxRead = 8192;
constexpr std::size_t kMaxField = 1000;

std::string printable(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, kMaxField)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  return out;
}

std::string now_utc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "?";
  return host;
}

std::string shell_word(const std::string& word) {
  if (!word.empty() &&
      word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=+-,@%") ==
          std::string::npos)
    return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

LockHolder parse_holder(const std::string& content) {
  LockHolder h;
  std::size_t start = 0;
  while (start < content.size()) {
    std::size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    const std::string line = content.substr(start, end - start);
    start = end + 1;
    const std::size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    const std::string key = line.substr(0, space), value = printable(line.substr(space + 1));
    if (value.empty()) continue;
    if (key == "pid") h.pid = value;
    else if (key == "host") h.host = value;
    else if (key == "since") h.since = value;
    else if (key == "command") h.command = value;
  }
  return h;
}

std::string read_fd(int fd) {
  std::string out(kMaxRead, '\0');
  const ssize_t n = ::pread(fd, out.data(), out.size(), 0);
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

// The holder writes its content right after taking the lock; a process that finds the lock
// taken in that instant waits a moment for the content rather than report "pid ?".
LockHolder holder_of(int fd) {
  std::string content = read_fd(fd);
  for (int i = 0; i < 20 && content.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    content = read_fd(fd);
  }
  return parse_holder(content);
}

bool same_file(int fd, const std::string& path) {
  struct stat by_fd{}, by_path{};
  if (::fstat(fd, &by_fd) != 0 || ::stat(path.c_str(), &by_path) != 0) return false;
  return by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

[[noreturn]] void fail(const std::string& what, int error) {
  throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(error)));
}

}  // namespace

std::string LockHolder::describe() const {
  return fmt::format("pid {} on host {} since {}: {}", pid, host, since, command);
}

std::string current_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out;
  std::size_t start = 0;
  while (start < raw.size()) {
    std::size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    out += (out.empty() ? "" : " ") + shell_word(raw.substr(start, end - start));
    start = end + 1;
  }
  if (out.size() > kMaxField) out = out.substr(0, kMaxField - 3) + "...";
  return out.empty() ? "?" : printable(out);
}

std::optional<FileLock> FileLock::try_acquire(const std::string& lock_path, LockHolder* holder) {
  std::error_code ec;
  const fs::path parent = fs::path(lock_path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  // A holder that lets go deletes the file; whoever locked the deleted one tries again.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create the lock file " + lock_path, errno);
    int rc;
    do rc = ::flock(fd, LOCK_EX | LOCK_NB);
    while (rc != 0 && errno == EINTR);
    bool enforced = true;
    if (rc != 0) {
      const int error = errno;
      if (error == ENOLCK || error == ENOSYS || error == EOPNOTSUPP) {
        const char* opt_out = std::getenv("CHESTLAB_NO_FILE_LOCKS");
        if (!opt_out || std::string(opt_out) != "1") {
          ::close(fd);
          throw FileLockUnsupported(fmt::format(
              "cannot lock {}: {}: the file system does not support flock(2), which chestlab uses to make sure one "
              "process at a time writes a file. Use a folder on another file system, or, where only one process "
              "can be writing it, set CHESTLAB_NO_FILE_LOCKS=1 to go on without the lock",
              lock_path, std::strerror(error)));
        }
        enforced = false;
      } else if (error != EWOULDBLOCK) {
        ::close(fd);
        fail("cannot lock " + lock_path, error);
      }
    }
    if (rc != 0 && enforced) {
      if (holder) *holder = holder_of(fd);
      ::close(fd);
      return std::nullopt;
    }
    if (!same_file(fd, lock_path)) {
      ::close(fd);
      continue;
    }
    const std::string content = fmt::format("pid {}\nhost {}\nsince {}\ncommand {}\n", static_cast<long>(::getpid()),
                                            printable(host_name()), now_utc(), current_command_line());
    // Informative only: a full disk must not stop the lock from working.
    if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, content.data(), content.size(), 0) < 0) {
    }
    return FileLock(lock_path, fd);
  }
  throw std::runtime_error(lock_path + ": the lock file keeps being replaced; is something deleting it?");
}

FileLock FileLock::acquire(const std::string& lock_path, const std::string& what) {
  LockHolder holder;
  if (std::optional<FileLock> lock = try_acquire(lock_path, &holder)) return std::move(*lock);
  throw FileLockedError(
      fmt::format("{} is in use by another chestlab process ({}); wait for it to end, or stop it. (Lock file {}; "
                  "one left behind by a process that has ended does not block.)",
                  what, holder.describe(), lock_path),
      lock_path, holder);
}

LockHolder FileLock::read_holder(const std::string& lock_path) {
  const int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return LockHolder{};
  const std::string content = read_fd(fd);
  ::close(fd);
  return parse_holder(content);
}

FileLock::FileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd), owner_pid_(::getpid()) {}

FileLock::FileLock(FileLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), owner_pid_(other.owner_pid_) {
  other.fd_ = -1;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    owner_pid_ = other.owner_pid_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() { release(); }

void FileLock::release() noexcept {
  if (fd_ < 0) return;
  // Deleted while still held, so nobody can lock this file after we let go and think it is
  // the current one (try_acquire checks the path still names what it locked).
  if (owner_pid_ == ::getpid() && same_file(fd_, path_)) ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

}  // namespace chestlab
