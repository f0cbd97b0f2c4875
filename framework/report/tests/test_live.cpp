// The live report's parts (live.h): the refresh tag exactly while something runs and the page
// is live, running told from abandoned by the run file's lock, the atomic page write (a reader
// never sees a part, no temporaries left, two writers do not collide), and the folder watch
// re-reading only what changed, keeping a run that cannot be read.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "chestlab/engine/file_lock.h"
#include "chestlab/errors.h"
#include "chestlab/engine/runfile.h"
#include "chestlab/report/live.h"
#include "chestlab/report/report.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A run file with `epochs` epochs in fold 0; complete when `complete`, else left "running".
// Returns the writer when `keep_writer` (its lock then stays held), else nullopt.
std::optional<RunFile> make_run(const fs::path& path, int epochs, bool complete, bool keep_writer = false) {
  RunMeta meta;
  meta.experiment = "livedemo";
  meta.run_id = path.stem().string();
  meta.monitor = "dice";
  Environment env;
  env.hostname = "testhost";
  RunFile file = RunFile::create(path.string(), meta, "[experiment]\nname = \"livedemo\"\n", env);
  file.transaction([&](RunWriter& w) { w.begin_fold(0, {"dice"}, {"a"}, {"b"}); });
  for (int e = 0; e < epochs; ++e)
    file.transaction([&](RunWriter& w) {
      HistoryRow row;
      row.epoch = e;
      row.train_loss = 1.0 / (e + 1);
      row.val_loss = 1.1 / (e + 1);
      row.metrics = {0.5 + 0.01 * e};
      w.append_epoch(0, row);
      w.set_fold_best(0, e, row.metrics[0], {});
    });
  if (complete)
    file.transaction([&](RunWriter& w) {
      w.set_fold_status(0, FoldStatus::Complete);
      w.write_summary();
      w.set_status(RunStatus::Complete);
      w.set_finished_now();
    });
  if (keep_writer) return file;
  return std::nullopt;
}

void add_epoch(RunFile& file, int epoch) {
  file.transaction([&](RunWriter& w) {
    HistoryRow row;
    row.epoch = epoch;
    row.val_loss = 0.1;
    row.metrics = {0.9};
    w.append_epoch(0, row);
  });
}

RunInfo fake_run(const std::string& path, RunStatus status) {
  RunInfo r;
  r.path = path;
  r.meta.experiment = "e";
  r.meta.run_id = fs::path(path).stem().string();
  r.status = status;
  return r;
}

const std::string kRefresh = "<meta http-equiv=\"refresh\"";

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("the page has the refresh tag exactly when it is live and a run is running", "[report][live]") {
  const std::vector<RunInfo> running = {fake_run("a.h5", RunStatus::Complete), fake_run("b.h5", RunStatus::Running)};
  const std::vector<RunInfo> finished = {fake_run("a.h5", RunStatus::Complete), fake_run("b.h5", RunStatus::Failed),
                                         fake_run("c.h5", RunStatus::Interrupted)};
  ReportOptions live;
  live.live_refresh_seconds = 7;
  live.written_at = "12:34:56";

  const std::string page = render_report_html(running, live);
  CHECK(page.find(kRefresh + " content=\"7\">") != std::string::npos);
  CHECK(page.find(kRefresh) < page.find("</head>"));
  CHECK(page.find("live: refreshes every 7 s, last written 12:34:56") != std::string::npos);
  CHECK(page_is_live(running, live));

  // Every run finished: no refresh, no live line.
  for (const std::string& p : {render_report_html(finished, live), render_report_html({}, live)}) {
    CHECK(p.find(kRefresh) == std::string::npos);
    CHECK(p.find("live:") == std::string::npos);
  }
  // Not watching: never.
  ReportOptions plain;
  CHECK(render_report_html(running, plain).find(kRefresh) == std::string::npos);
  CHECK(render_report_html(running, plain).find("live:") == std::string::npos);
  CHECK_FALSE(page_is_live(running, plain));
  CHECK(any_running(running, plain));

  // A run left "running" by a process that is gone does not keep the page reloading; it is
  // shown as such.
  ReportOptions abandoned = live;
  abandoned.abandoned = {"b.h5"};
  const std::string a = render_report_html(running, abandoned);
  CHECK(a.find(kRefresh) == std::string::npos);
  CHECK(a.find("no process is writing it") != std::string::npos);
  CHECK(a.find("(running, no process)") != std::string::npos);
  CHECK_FALSE(any_running(running, abandoned));
  // ... unless a sweep is at work (more runs to come).
  abandoned.sweep_running = true;
  CHECK(render_report_html(running, abandoned).find(kRefresh) != std::string::npos);
  CHECK(render_report_html(finished, abandoned).find(kRefresh) != std::string::npos);

  // A run shown from an earlier read is marked.
  ReportOptions stale = live;
  stale.stale["b.h5"] = "b.h5: could not be read (damaged); shown as read at 12:00:00";
  CHECK(render_report_html(running, stale).find("Shown as read earlier") != std::string::npos);

  CHECK(refresh_seconds_for(10) == 10);
  CHECK(refresh_seconds_for(2.5) == 3);
  CHECK(refresh_seconds_for(0.2) == 1);
}

TEST_CASE("a run is running while its writer holds the lock, abandoned once nobody does", "[report][live]") {
  const fs::path dir = test::scratch_dir("live_lock");
  const fs::path path = dir / "r.h5";
  CHECK(probe_lock((dir / "none.lock").string()) == LockState::Free);
  CHECK_FALSE(fs::exists(dir / "none.lock"));  // the probe creates nothing

  std::optional<RunFile> writer = make_run(path, 1, false, true);
  CHECK(probe_lock(path.string() + ".lock") == LockState::Held);
  RunInfo run = read_run(path.string(), LoadWeights::No);
  CHECK(run.status == RunStatus::Running);
  CHECK_FALSE(is_abandoned(run));
  // The probe does not disturb the writer.
  add_epoch(*writer, 1);
  writer.reset();  // the writer ends without marking the run finished (as a kill would)
  CHECK(probe_lock(path.string() + ".lock") == LockState::Free);
  CHECK(is_abandoned(read_run(path.string(), LoadWeights::No)));

  // A lock file left behind by a killed process (nobody holds it) says nothing either.
  std::ofstream(path.string() + ".lock") << "pid 999999\nhost elsewhere\n";
  CHECK(is_abandoned(read_run(path.string(), LoadWeights::No)));
  // A lock held by someone else (here: another descriptor of this process) is held.
  {
    std::optional<FileLock> other = FileLock::try_acquire(path.string() + ".lock");
    REQUIRE(other);
    CHECK_FALSE(is_abandoned(read_run(path.string(), LoadWeights::No)));
  }
  // Runs that say they ended are never abandoned.
  make_run(dir / "done.h5", 2, true);
  CHECK_FALSE(is_abandoned(read_run((dir / "done.h5").string(), LoadWeights::No)));
}

TEST_CASE("the page is replaced atomically: a reader sees the old or the new page, never a part", "[report][live]") {
  const fs::path dir = test::scratch_dir("live_atomic");
  const std::string page = (dir / "sub" / "report.html").string();
  write_file_atomically(page, "first");
  CHECK(read_text(page) == "first");
  CHECK(names_in(dir / "sub") == std::vector<std::string>{"report.html"});  // no temporary left
  struct stat st{};
  REQUIRE(::stat(page.c_str(), &st) == 0);
  const mode_t umask_now = ::umask(0);
  ::umask(umask_now);
  CHECK((st.st_mode & 0777) == (0666 & ~umask_now));  // readable like any file, not mkstemp's 0600

  // Two writers (threads, like two watchers) and one reader at once: every read is one whole
  // page, and the writers never clash over a temporary.
  const std::string a(600000, 'a'), b = std::string(900000, 'b') + "</html>\n";
  std::atomic<bool> done{false};
  std::atomic<int> partial{0}, reads{0}, failures{0};
  std::thread reader([&] {
    while (!done) {
      const std::string got = read_text(page);
      ++reads;
      if (got != a && got != b && got != "first") ++partial;
    }
  });
  auto writer = [&](const std::string& content) {
    for (int i = 0; i < 60; ++i) {
      try {
        write_file_atomically(page, content);
      } catch (...) {
        ++failures;
      }
    }
  };
  std::thread w1(writer, a), w2(writer, b);
  w1.join();
  w2.join();
  done = true;
  reader.join();
  CHECK(failures == 0);
  CHECK(partial == 0);
  CHECK(reads > 0);
  CHECK(names_in(dir / "sub") == std::vector<std::string>{"report.html"});

  // A page that cannot be written is a data error naming it, and leaves no temporary.
  fs::create_directories(dir / "locked");
  fs::permissions(dir / "locked", fs::perms::owner_read | fs::perms::owner_exec);
  if (::access((dir / "locked").c_str(), W_OK) != 0) {  // root writes anywhere
    CHECK_THROWS_AS(write_file_atomically((dir / "locked" / "p.html").string(), "x"), DataError);
    CHECK(names_in(dir / "locked").empty());
  }
  fs::permissions(dir / "locked", fs::perms::owner_all);
}

TEST_CASE("the folder watch re-reads what changed and keeps a run that cannot be read now", "[report][live]") {
  const fs::path dir = test::scratch_dir("live_folder");
  std::optional<RunFile> live = make_run(dir / "a" / "live.h5", 1, false, true);
  make_run(dir / "b" / "done.h5", 3, true);
  RunFolderWatch watch(dir.string());
  REQUIRE(watch.update());  // the first poll always counts
  REQUIRE(watch.runs().size() == 2);
  CHECK(watch.runs()[0].meta.run_id == "live");
  CHECK(watch.report_options({}).abandoned.empty());
  CHECK_FALSE(watch.update());  // nothing changed
  CHECK_FALSE(watch.update());

  // An epoch more: changed, and the new content is read.
  add_epoch(*live, 1);
  CHECK(watch.update());
  CHECK(watch.runs()[0].folds[0].history.size() == 2);
  CHECK_FALSE(watch.update());

  // A new run file, and a file that is no run file: both change the page; the latter is left
  // out with one warning, not repeated while it stays as it is.
  make_run(dir / "c.h5", 1, true);
  std::ofstream(dir / "cache.h5") << "not a run file";
  CHECK(watch.update());
  CHECK(watch.runs().size() == 3);
  REQUIRE(watch.new_problems().size() == 1);
  CHECK(watch.new_problems()[0].find("left out: ") == 0);
  CHECK(watch.new_problems()[0].find("cache.h5") != std::string::npos);
  CHECK(watch.report_options({}).problems.size() == 1);
  CHECK_FALSE(watch.update());
  CHECK(watch.new_problems().empty());

  // A run file that another program is rewriting (here: damaged) keeps its last good content,
  // marked stale; once readable again it is fresh.
  const fs::path done = dir / "b" / "done.h5";
  const std::string good = read_text(done);
  std::ofstream(done, std::ios::binary | std::ios::trunc) << good.substr(0, good.size() / 2);
  CHECK(watch.update());
  REQUIRE(watch.runs().size() == 3);
  CHECK(watch.runs()[1].meta.run_id == "done");
  CHECK(watch.runs()[1].folds[0].history.size() == 3);
  REQUIRE(watch.new_problems().size() == 1);
  CHECK(watch.new_problems()[0].find("showing the content read at") != std::string::npos);
  const ReportOptions o = watch.report_options({});
  REQUIRE(o.stale.count(done.string()) == 1);
  CHECK(render_report_html(watch.runs(), o).find("Shown as read earlier") != std::string::npos);
  std::ofstream(done, std::ios::binary | std::ios::trunc) << good;
  CHECK(watch.update());
  CHECK(watch.report_options({}).stale.empty());

  // The writer ends without marking the run finished: abandoned, which changes the page too.
  live.reset();
  CHECK(watch.update());
  CHECK(watch.report_options({}).abandoned == std::set<std::string>{(dir / "a" / "live.h5").string()});
  CHECK_FALSE(watch.update());

  // A run file that goes.
  fs::remove(dir / "c.h5");
  CHECK(watch.update());
  CHECK(watch.runs().size() == 2);

  // A sweep at work under the folder (it holds .sweep.lock) keeps the page live.
  fs::create_directories(dir / "sweep");
  {
    std::optional<FileLock> sweep = FileLock::try_acquire((dir / "sweep" / ".sweep.lock").string());
    REQUIRE(sweep);
    CHECK(watch.update());
    CHECK(watch.report_options({}).sweep_running);
  }
  std::ofstream(dir / "sweep" / ".sweep.lock") << "123";  // left behind, nobody holds it
  CHECK(watch.update());
  CHECK_FALSE(watch.report_options({}).sweep_running);

  // A folder that goes is a data error; the runs of the last poll stay.
  RunFolderWatch missing((dir / "nowhere").string());
  CHECK_THROWS_AS(missing.update(), DataError);
}

TEST_CASE("watch_report writes a live page, rewrites it when a run changes and stops when told", "[report][live]") {
  const fs::path dir = test::scratch_dir("live_loop");
  std::optional<RunFile> writer = make_run(dir / "results" / "r.h5", 1, false, true);
  WatchSettings s;
  s.dir = (dir / "results").string();
  s.out = (dir / "page" / "report.html").string();
  s.interval_seconds = 0.2;
  std::atomic<bool> stop{false};
  std::ostringstream log, warn;
  int pages = 0;
  std::thread loop([&] { pages = watch_report(s, [&] { return stop.load(); }, log, warn); });
  auto wait_for = [&](const std::function<bool(const std::string&)>& ok) {
    for (int i = 0; i < 200; ++i) {
      if (fs::exists(s.out) && ok(read_text(s.out))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  CHECK(wait_for([](const std::string& p) { return p.find("live: refreshes every 1 s") != std::string::npos; }));
  add_epoch(*writer, 1);
  CHECK(wait_for([](const std::string& p) { return p.find("<td class=\"num\">2</td>") != std::string::npos; }));
  writer->transaction([](RunWriter& w) {
    w.set_status(RunStatus::Complete);
    w.set_finished_now();
  });
  CHECK(wait_for([](const std::string& p) { return p.find("status-complete\">complete") != std::string::npos; }));
  const std::string last = read_text(s.out);
  CHECK(last.find(kRefresh) == std::string::npos);
  stop = true;
  loop.join();
  CHECK(pages == 3);
  CHECK(last.size() > 1000);
  CHECK(last.substr(last.size() - 8) == "</html>\n");
  CHECK(names_in(dir / "page") == std::vector<std::string>{"report.html"});
  CHECK(warn.str().empty());
  const std::string lines = log.str();
  INFO(lines);
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 3);
  CHECK(lines.find("1 run, 1 running") != std::string::npos);
  CHECK(lines.find(", live\n") != std::string::npos);

  // A missing folder ends it before any page.
  s.dir = (dir / "nowhere").string();
  CHECK_THROWS_AS(watch_report(s, [] { return true; }, log, warn), DataError);
}
