// The watched report (see live.h): folder scans, lock probes, atomic page writes, the loop.
#include "chestlab/report/live.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <ostream>
#include <thread>

#include "chestlab/errors.h"

namespace fs = std::filesystem;

namespace chestlab {

namespace {

constexpr const char* kSweepLockName = ".sweep.lock";  // app/commands/sweep.cpp's SweepLock

bool stamp_of(const std::string& path, FileStamp& out) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out.path = path;
  out.size = static_cast<std::uintmax_t>(st.st_size);
  out.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  out.inode = static_cast<std::uint64_t>(st.st_ino);
  return true;
}

// For temporary names: the host name with anything but [A-Za-z0-9._-] as '_'.
std::string host_word() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "host";
  std::string out = host;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  return out.empty() ? "host" : out;
}

[[noreturn]] void fail(const std::string& path, const std::string& what, int error) {
  throw DataError(path, fmt::format("cannot write the report: {}: {}", what, std::strerror(error)));
}

}  // namespace

std::string local_time_hms() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char text[16];
  std::strftime(text, sizeof text, "%H:%M:%S", &tm);
  return text;
}

int refresh_seconds_for(double interval_seconds) {
  if (!(interval_seconds > 1)) return 1;  // NaN too
  return interval_seconds >= 1e9 ? 1000000000 : static_cast<int>(std::ceil(interval_seconds));
}

FolderScan scan_folder(const std::string& dir) {
  std::error_code ec;
  FolderScan scan;
  FileStamp stamp;
  if (fs::is_regular_file(dir, ec)) {
    if (stamp_of(dir, stamp)) scan.run_files.push_back(stamp);
    return scan;
  }
  if (!fs::is_directory(dir, ec)) throw DataError(dir, "no such file or folder");
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() == ".h5") {
      // Gone between the listing and the stat (a writer's rename never makes a run file go).
      if (stamp_of(p.string(), stamp)) scan.run_files.push_back(stamp);
    } else if (p.filename() == kSweepLockName) {
      scan.sweep_locks.push_back(p.string());
    }
  }
  if (ec) throw DataError(dir, "cannot list the folder: " + ec.message());
  std::sort(scan.run_files.begin(), scan.run_files.end(),
            [](const FileStamp& a, const FileStamp& b) { return a.path < b.path; });
  std::sort(scan.sweep_locks.begin(), scan.sweep_locks.end());
  return scan;
}

LockState probe_lock(const std::string& lock_path) {
  const int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? LockState::Free : LockState::Unknown;
  int rc;
  do rc = ::flock(fd, LOCK_SH | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  const int error = errno;
  LockState state = LockState::Free;
  if (rc == 0) {
    ::flock(fd, LOCK_UN);
  } else {
    state = error == EWOULDBLOCK ? LockState::Held : LockState::Unknown;
  }
  ::close(fd);
  return state;
}

bool is_abandoned(const RunInfo& run) {
  return run.status == RunStatus::Running && probe_lock(run.path + ".lock") == LockState::Free;
}

void write_file_atomically(const std::string& path, const std::string& content) {
  const fs::path target(path);
  const fs::path parent = target.parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  static std::atomic<unsigned long> counter{0};
  static const std::string host = host_word();
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = fmt::format("{}.tmp-{}-{}-{}", path, host, static_cast<long>(::getpid()), counter++);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt > 1000)) fail(path, "create " + tmp, errno);
  }
  auto give_up = [&](const std::string& what) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, what, error);
  };
  for (std::size_t done = 0; done < content.size();) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      give_up("write " + tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) give_up("fsync " + tmp);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) give_up("close " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) give_up("rename " + tmp + " to " + path);
  // The rename durable too; a folder that cannot be synced (some network file systems) does
  // not make the page any less complete.
  const int dir_fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

// ---- RunFolderWatch -----------------------------------------------------------------------

RunFolderWatch::RunFolderWatch(std::string dir) : dir_(std::move(dir)) {}

bool RunFolderWatch::update() {
  const FolderScan scan = scan_folder(dir_);
  new_problems_.clear();
  bool changed = first_;
  first_ = false;
  std::map<std::string, Entry> next;
  for (const FileStamp& stamp : scan.run_files) {
    auto it = entries_.find(stamp.path);
    const bool known = it != entries_.end();
    Entry e = known ? std::move(it->second) : Entry{};
    if (known) entries_.erase(it);
    // Re-read what is new or changed, and retry what failed (a file caught while another
    // program wrote it may read fine now).
    if (!known || e.stamp != stamp || !e.error.empty()) {
      const std::string old_error = e.error;
      const bool stamp_changed = !known || e.stamp != stamp;
      try {
        e.run = read_run(stamp.path, LoadWeights::No);
        e.has_run = true;
        e.read_at = local_time_hms();
        e.error.clear();
      } catch (const std::exception& ex) {  // DataError; anything else must not end the watch either
        e.error = ex.what();
      }
      e.stamp = stamp;
      if (stamp_changed || e.error != old_error) changed = true;
      if (!e.error.empty() && e.error != old_error)
        new_problems_.push_back(e.has_run ? fmt::format("{} (showing the content read at {})", e.error, e.read_at)
                                          : fmt::format("left out: {}", e.error));
    }
    next.emplace(stamp.path, std::move(e));
  }
  if (!entries_.empty()) changed = true;  // run files that went
  entries_ = std::move(next);

  runs_.clear();
  problems_.clear();
  stale_.clear();
  std::set<std::string> abandoned;
  for (const auto& [path, e] : entries_) {
    if (!e.has_run) {
      problems_.push_back(e.error);
      continue;
    }
    if (!e.error.empty())
      stale_[path] = fmt::format("{}: could not be read ({}); shown as read at {}", path, e.error, e.read_at);
    runs_.push_back(e.run);
    if (is_abandoned(e.run)) abandoned.insert(path);
  }
  if (abandoned != abandoned_) changed = true;
  abandoned_ = std::move(abandoned);
  const bool sweep = std::any_of(scan.sweep_locks.begin(), scan.sweep_locks.end(),
                                 [](const std::string& p) { return probe_lock(p) == LockState::Held; });
  if (sweep != sweep_running_) changed = true;
  sweep_running_ = sweep;
  return changed;
}

ReportOptions RunFolderWatch::report_options(ReportOptions base) const {
  base.problems.insert(base.problems.end(), problems_.begin(), problems_.end());
  base.abandoned = abandoned_;
  base.stale = stale_;
  base.sweep_running = sweep_running_;
  return base;
}

// ---- the loop -----------------------------------------------------------------------------

int watch_report(const WatchSettings& settings, const std::function<bool()>& stop, std::ostream& log,
                 std::ostream& warn) {
  RunFolderWatch watch(settings.dir);
  watch.update();  // a missing folder ends here, before any page
  const int refresh = refresh_seconds_for(settings.interval_seconds);
  int pages = 0;
  auto warn_new_problems = [&] {
    for (const std::string& p : watch.new_problems()) warn << "warning: " << p << "\n";
    warn << std::flush;
  };
  auto write_page = [&] {
    ReportOptions o = watch.report_options(settings.options);
    o.live_refresh_seconds = refresh;
    o.written_at = local_time_hms();
    const std::string html = render_report_html(watch.runs(), o);
    write_file_atomically(settings.out, html);
    ++pages;
    const auto& runs = watch.runs();
    const auto running = std::count_if(runs.begin(), runs.end(), [&](const RunInfo& r) {
      return r.status == RunStatus::Running && !o.abandoned.count(r.path);
    });
    log << fmt::format("{} {}: {} run{}, {} running{}, {:.0f} kB{}\n", o.written_at, settings.out, runs.size(),
                       runs.size() == 1 ? "" : "s", running, o.sweep_running ? " (a sweep is at work)" : "",
                       html.size() / 1024.0, page_is_live(runs, o) ? ", live" : "")
        << std::flush;
  };
  warn_new_problems();
  write_page();  // the first page: a failure ends the watch (DataError)

  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(std::min(settings.interval_seconds, 1e7)));
  std::string last_failure;  // said once until it changes
  auto failed = [&](const std::string& what) {
    if (what != last_failure) warn << "warning: " << what << " (the last page stays)\n" << std::flush;
    last_failure = what;
  };
  auto next_poll = std::chrono::steady_clock::now() + interval;
  while (!stop()) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_poll) {
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(next_poll - now,
                                                                                std::chrono::milliseconds(100)));
      continue;
    }
    next_poll = now + interval;
    bool changed = false;
    try {
      changed = watch.update();
      warn_new_problems();
    } catch (const std::exception& e) {  // the folder went (unmounted?): keep polling
      failed(e.what());
      continue;
    }
    if (!changed && last_failure.empty()) continue;
    try {
      write_page();
      last_failure.clear();
    } catch (const std::exception& e) {
      failed(e.what());
    }
  }
  return pages;
}

}  // namespace chestlab
