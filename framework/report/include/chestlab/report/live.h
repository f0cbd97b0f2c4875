// A report that follows the runs while they train (`chestlab report --watch`): the run files of
// a folder polled for changes and re-read only when they changed, whether a process is still
// writing a run (its lock), the page replaced atomically, and the watch loop. Torch-free.
//
//   RunFolderWatch watch("results");
//   watch.update();                               // throws DataError when the folder is missing
//   ReportOptions o = watch.report_options(base);  // problems, abandoned, stale, sweep_running
//   write_file_atomically("report.html", render_report_html(watch.runs(), o));
//
// Running or abandoned: a writer holds an exclusive flock(2) on `<run>.h5.lock` for as long as
// it writes the run file (engine/file_lock.h); the kernel drops it when the process ends, however
// it ends. So a run file whose status says "running" while nobody holds that lock (or the lock
// file is gone) was left by a process that stopped without saying so (kill -9, a crash, a node
// that went away): abandoned, not running. The check takes a shared lock for an instant and
// lets go (probe_lock); it never creates or deletes a lock file.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "chestlab/engine/runfile.h"
#include "chestlab/report/report.h"

namespace chestlab {

// What says a file changed: the watcher re-reads a run file when any of these differs. A
// writer replaces a run file by rename, so every change gives a new inode.
struct FileStamp {
  std::string path;
  std::uintmax_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t inode = 0;
  bool operator==(const FileStamp& o) const {
    return path == o.path && size == o.size && mtime_ns == o.mtime_ns && inode == o.inode;
  }
  bool operator!=(const FileStamp& o) const { return !(*this == o); }
};

struct FolderScan {
  std::vector<FileStamp> run_files;      // files ending in .h5, sorted by path
  std::vector<std::string> sweep_locks;  // `.sweep.lock` files (sweep folders), sorted
};

// The files under `dir` (recursively; a `dir` that is a file gives that file). Throws
// DataError when `dir` is missing or cannot be listed.
FolderScan scan_folder(const std::string& dir);

enum class LockState {
  Held,         // a process holds it: the writer is at work
  Free,         // nobody holds it, or there is no lock file
  Unknown,      // the file system has no flock, or the lock file cannot be opened
};
// Whether someone holds the flock on `lock_path`, without creating the file: a shared lock is
// tried (non-blocking) and at once let go. A writer that tries to take the lock in exactly
// that instant is refused as if busy (it says so and can be started again); the watcher only
// probes runs that say "running", once per interval.
LockState probe_lock(const std::string& lock_path);

// A run file that says "running" while no process holds its lock (`<path>.lock`). Runs with
// any other status, and runs whose lock cannot be checked (LockState::Unknown), are not abandoned.
bool is_abandoned(const RunInfo& run);

// Replaces `path` with `content` so that a reader sees the old file or the new one, never a
// part: writes a temporary of its own beside it (`<path>.tmp-<host>-<pid>-<n>`, created
// exclusively, so that two writers never share one), fsyncs it, renames it over `path` and
// fsyncs the folder (created when missing). The file gets 0666 less the umask. On failure the
// temporary is removed and DataError naming `path` is thrown; `path` is then unchanged.
void write_file_atomically(const std::string& path, const std::string& content);

// The runs of a folder, kept between polls: each update() rescans the folder and re-reads only
// the run files that are new or whose stamp changed. A run file that cannot be read (damaged,
// or not a run file) keeps the content of its last good read, marked stale in the page, or is
// left out with the reason when it was never read. Not thread-safe.
class RunFolderWatch {
 public:
  explicit RunFolderWatch(std::string dir);

  // One poll. Returns true when the page would change: on the first call, and when a run file
  // appeared, went, changed or became (un)readable, a run became abandoned, or a sweep started
  // or ended. Throws DataError when the folder is missing or cannot be listed (the runs of
  // the last good poll stay).
  bool update();

  const std::vector<RunInfo>& runs() const { return runs_; }  // sorted by path
  // Messages about files that went wrong in the last update() and were fine (or different)
  // before: one per file, for a warning line.
  const std::vector<std::string>& new_problems() const { return new_problems_; }
  // `base` with problems, abandoned, stale and sweep_running of the last update().
  ReportOptions report_options(ReportOptions base) const;

 private:
  struct Entry {
    FileStamp stamp;
    bool has_run = false;  // a good read exists (perhaps of an earlier stamp)
    RunInfo run;
    std::string read_at;  // HH:MM:SS of the good read
    std::string error;    // the last read of this stamp failed: why ("" when it was good)
  };
  std::string dir_;
  std::map<std::string, Entry> entries_;
  std::vector<RunInfo> runs_;
  std::vector<std::string> problems_;
  std::map<std::string, std::string> stale_;
  std::set<std::string> abandoned_;
  bool sweep_running_ = false;
  std::vector<std::string> new_problems_;
  bool first_ = true;
};

struct WatchSettings {
  std::string dir;           // the results folder (or one run file)
  std::string out;           // the page
  double interval_seconds = 10;
  ReportOptions options;     // title, source, all_metrics; the rest is filled in every round
};

// The local time as HH:MM:SS.
std::string local_time_hms();

// `chestlab report --watch`: writes the page, then every interval polls the folder and
// rewrites the page (atomically) when it would change, until `stop()` returns true (asked
// every 100 ms; a page being written is finished first). The page is live (reloads itself
// every ceil(interval) s, at least 1) while anything runs. One line per page written to `log`,
// a warning per new problem (a file left out or shown stale, a folder that cannot be listed,
// a page that cannot be written) to `warn`. Throws DataError when the first page cannot be
// made (missing folder, unwritable page); later failures are warnings and the last page stays.
// Returns the number of pages written.
int watch_report(const WatchSettings& settings, const std::function<bool()>& stop, std::ostream& log,
                 std::ostream& warn);

// The refresh period of a live page for a poll interval: ceil(interval), at least 1.
int refresh_seconds_for(double interval_seconds);

}  // namespace chestlab
