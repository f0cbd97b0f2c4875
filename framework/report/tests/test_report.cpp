// chestlab explore, curves and report through the program; the report opened in Debian's
// headless Chromium (skipped when no Chromium is installed); `report --watch` following run
// files that change, a real run killed with kill -9, and its usage errors.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "chestlab/engine/runfile.h"
#include "run_files.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace chestlab;
using chestlab::test::chestlab_exe;
using chestlab::test::run_command;
using chestlab::test::shell_quote;
using chestlab::test::spawn_process;
using chestlab::test::wait_process;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

// dice of fold k at epoch e: 0.5 + 0.05 e + 0.01 k, so with 5 epochs the best epoch is 4 and
// the folds' best values are 0.70, 0.71, 0.72 (mean 0.7100, sample std 0.0100).
double dice(int k, int e) { return 0.5 + 0.05 * e + 0.01 * k; }

// A run file written through the run file API, as the trainer writes it. `finished_folds`
// folds complete; one more fold is left running when `running_fold`.
void make_run(const fs::path& path, const std::string& run_id, int finished_folds, bool running_fold, bool with_test) {
  RunMeta meta;
  meta.experiment = "reportdemo";
  meta.run_id = run_id;
  meta.config_hash = "c0ffee";
  meta.seed = 7;
  meta.monitor = "dice";
  meta.monitor_mode = MonitorMode::Max;
  Environment env;
  env.libtorch_version = "1.13.1";
  env.device = "cpu";
  env.threads = 2;
  env.hostname = "testhost";
  const std::string config =
      "[experiment]\nname = \"reportdemo\"\nseed = 7\n\n[model]\nplugin = \"unet\"\nchannels = 8\n\n"
      "[optimizer]\nname = \"adam\"\nlr = 0.001\n\n[[metrics]]\nplugin = \"dice\"\nmonitor = true\n";
  RunFile file = RunFile::create(path.string(), meta, config, env);
  const int folds = finished_folds + (running_fold ? 1 : 0);
  for (int k = 0; k < folds; ++k) {
    const bool finished = k < finished_folds;
    const int epochs = finished ? 5 : 2;
    file.transaction([&](RunWriter& w) {
      w.begin_fold(k, {"dice", "acc"}, {"a", "b"}, {"c"});
      for (int e = 0; e < epochs; ++e) {
        HistoryRow row;
        row.epoch = e;
        row.lr = 1e-3;
        row.train_loss = 1.0 / (e + 1) + 0.05 * k;
        row.val_loss = 1.2 / (e + 1) + 0.05 * k;
        row.seconds = 1;
        row.metrics = {dice(k, e), 0.9 + 0.01 * e};
        w.append_epoch(k, row);
      }
      w.set_fold_best(k, epochs - 1, dice(k, epochs - 1), {});
      if (finished) w.set_fold_status(k, FoldStatus::Complete);
    });
  }
  file.transaction([&](RunWriter& w) {
    if (with_test) w.write_test({{"dice", 0.6543}, {"acc", 0.9123}});
    w.write_summary();
    if (!running_fold) {
      w.set_status(RunStatus::Complete);
      w.set_finished_now();
    }
  });
}

// Headless Chromium from Debian (chromium-headless-shell or chromium), or $CHESTLAB_CHROMIUM.
std::string find_chromium() {
  if (const char* env = std::getenv("CHESTLAB_CHROMIUM"); env && *env) return env;
  for (const char* name : {"chromium-headless-shell", "chromium", "chromium-browser"}) {
    std::string out;
    if (run_command(std::string("command -v ") + name, &out) == 0 && !out.empty()) {
      while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
      return out;
    }
  }
  return "";
}

struct BrowserResult {
  int status = -1;
  std::string dom;            // stdout of --dump-dom
  std::string console_lines;  // the log's console messages (page errors, failed loads)
};

// Loads a page headless; with `screenshot`, writes a PNG of `width` x `height` too.
BrowserResult open_in_chromium(const std::string& chromium, const fs::path& page, const fs::path& work,
                               const fs::path& screenshot = {}, int width = 1280, int height = 2400) {
  const std::string common = shell_quote(chromium) +
                             " --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run"
                             " --user-data-dir=" + shell_quote((work / "profile").string()) +
                             " --enable-logging=stderr --v=0 --virtual-time-budget=5000";
  const std::string url = shell_quote("file://" + fs::absolute(page).string());
  BrowserResult r;
  const fs::path dom = work / "dom.html", log = work / "chromium.log";
  // Braces: run_command appends 2>&1, which must not replace the redirections inside.
  r.status = run_command(fmt::format("{{ timeout 60 {} --dump-dom {} > {} 2> {}; }}", common, url,
                                     shell_quote(dom.string()), shell_quote(log.string())));
  r.dom = read_text(dom);
  std::string log_text = read_text(log);
  if (!screenshot.empty()) {
    const fs::path shot_log = work / "screenshot.log";
    const int s = run_command(fmt::format("{{ timeout 60 {} --window-size={},{} --screenshot={} {} > /dev/null 2> {}; }}",
                                          common, width, height, shell_quote(screenshot.string()), url,
                                          shell_quote(shot_log.string())));
    if (s != 0) r.status = s;
    log_text += read_text(shot_log);
  }
  std::istringstream lines(log_text);
  for (std::string line; std::getline(lines, line);)
    if (line.find(":CONSOLE") != std::string::npos) r.console_lines += line + "\n";
  return r;
}

}  // namespace

TEST_CASE("chestlab curves draws the loss and monitor curves of a run file", "[report]") {
  const fs::path dir = test::scratch_dir("curves_cmd");
  make_run(dir / "run.h5", "r1", 3, false, false);
  std::string out;
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " curves " + shell_quote((dir / "run.h5").string()) + " --out " +
                          shell_quote((dir / "png").string()) + " --format png",
                      &out) == 0);
  INFO(out);
  for (const char* name : {"r1-loss.png", "r1-dice.png"}) {
    const cv::Mat img = cv::imread((dir / "png" / name).string(), cv::IMREAD_COLOR);
    REQUIRE(!img.empty());
    CHECK(img.cols == 800);
    CHECK(img.rows == 450);
    // Fold 1's colour (palette 1, orange 255,127,14) is drawn: the curves are there.
    cv::Mat orange;
    cv::inRange(img, cv::Scalar(0, 110, 235), cv::Scalar(40, 145, 255), orange);
    CHECK(cv::countNonZero(orange) > 100);
  }
  CHECK_FALSE(fs::exists(dir / "png" / "r1-acc.png"));
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " curves " + shell_quote((dir / "run.h5").string()) + " --out " +
                          shell_quote((dir / "svg").string()) + " --all-metrics",
                      &out) == 0);
  CHECK(read_text(dir / "svg" / "r1-acc.svg").find("<svg") != std::string::npos);
  CHECK(run_command(shell_quote(chestlab_exe()) + " curves " + shell_quote((dir / "run.h5").string()) +
                    " --out x --format gif") == 2);
  CHECK(run_command(shell_quote(chestlab_exe()) + " curves " + shell_quote((dir / "missing.h5").string()) +
                    " --out x") == 3);
}

TEST_CASE("chestlab report writes one self-contained page with every run's tables and curves", "[report]") {
  const fs::path dir = test::scratch_dir("report_cmd");
  make_run(dir / "results" / "reportdemo" / "a.h5", "run-a", 3, false, true);
  make_run(dir / "results" / "reportdemo" / "b.h5", "run-b", 1, true, false);
  std::ofstream(dir / "results" / "cache.h5") << "not a run file";
  std::string out;
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " report " + shell_quote((dir / "results").string()) + " --out " +
                          shell_quote((dir / "report.html").string()),
                      &out) == 0);
  INFO(out);
  CHECK(out.find("cache.h5") != std::string::npos);  // named as left out
  const std::string html = read_text(dir / "report.html");
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("run-a") != std::string::npos);
  CHECK(html.find("run-b") != std::string::npos);
  CHECK(html.find("0.7100 ± 0.0100") != std::string::npos);  // run a: mean ± std of dice over 3 folds
  CHECK(html.find("0.6543") != std::string::npos);            // run a's test value
  CHECK(html.find("0.5600*") != std::string::npos);           // run b's unfinished fold, marked
  CHECK(html.find("Test set") != std::string::npos);
  CHECK(count_of(html, "<img ") == 4);  // loss and dice curves per run
  CHECK(count_of(html, "src=\"data:image/svg+xml;base64,") == 4);
  // Self-contained: no reference to any other file or server.
  CHECK_FALSE(std::regex_search(html, std::regex(R"((src|href)\s*=\s*"(?!#|data:))", std::regex::icase)));
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  // An empty folder still gives a page; a missing one is a data error.
  fs::create_directories(dir / "empty");
  CHECK(run_command(shell_quote(chestlab_exe()) + " report " + shell_quote((dir / "empty").string()) + " --out " +
                    shell_quote((dir / "empty.html").string())) == 0);
  CHECK(read_text(dir / "empty.html").find("No run files found") != std::string::npos);
  CHECK(run_command(shell_quote(chestlab_exe()) + " report " + shell_quote((dir / "nowhere").string())) == 3);
}

TEST_CASE("The HTML report renders in headless Chromium without console errors", "[report][chromium]") {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    WARN("SKIPPED: no headless Chromium (apt-get install chromium-headless-shell, or set CHESTLAB_CHROMIUM)");
    return;
  }
  const fs::path dir = test::scratch_dir("report_chromium");
  make_run(dir / "results" / "a.h5", "run-a", 3, false, true);
  make_run(dir / "results" / "b.h5", "run-b", 1, true, false);
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " report " + shell_quote((dir / "results").string()) + " --out " +
                      shell_quote((dir / "report.html").string())) == 0);

  // The console check can fail: a page with a script error is caught.
  std::ofstream(dir / "broken.html") << "<!DOCTYPE html><html><body><p>x</p><script>no_such_function();</script>"
                                        "</body></html>";
  const BrowserResult broken = open_in_chromium(chromium, dir / "broken.html", dir);
  CHECK(broken.console_lines.find("no_such_function") != std::string::npos);

  const fs::path shot = dir / "report.png";
  const BrowserResult r = open_in_chromium(chromium, dir / "report.html", dir, shot);
  REQUIRE(r.status == 0);
  INFO(r.console_lines);
  CHECK(r.console_lines.empty());
  // The DOM Chromium built has the tables and their rows.
  CHECK(count_of(r.dom, "<table") >= 8);
  CHECK(r.dom.find("<td class=\"num\">0.7100 ± 0.0100 <small>(n=3)</small></td>") != std::string::npos);
  CHECK(r.dom.find("run-b") != std::string::npos);
  // The screenshot is not blank and shows the curves (fold 1's orange).
  const cv::Mat img = cv::imread(shot.string(), cv::IMREAD_COLOR);
  REQUIRE(!img.empty());
  CHECK(img.cols == 1280);
  cv::Mat gray;
  cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
  cv::Scalar mean, stddev;
  cv::meanStdDev(gray, mean, stddev);
  CHECK(stddev[0] > 20);
  CHECK(cv::countNonZero(gray < 80) > 2000);  // text
  cv::Mat orange;
  cv::inRange(img, cv::Scalar(0, 110, 235), cv::Scalar(40, 145, 255), orange);
  CHECK(cv::countNonZero(orange) > 200);
}

TEST_CASE("chestlab explore writes figures and a summary matching the real RSNA labels", "[explore]") {
  CHESTLAB_REQUIRE_SHARED_DATA(data);
  // Patients and positives counted here from the CSV text.
  std::ifstream in(data / "rsna" / "stage_2_train_labels.csv");
  std::string line;
  std::getline(in, line);
  std::set<std::string> ids, positive;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    ids.insert(line.substr(0, line.find(',')));
    if (line.back() == '1') positive.insert(line.substr(0, line.find(',')));
  }
  const fs::path dir = test::scratch_dir("explore_cmd");
  const std::string exp = (test::source_dir() / "experiments" / "rsna_resnet_seg.toml").string();
  std::string out;
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " explore " + shell_quote(exp) + " --out " +
                          shell_quote((dir / "out").string()) + " --k 4 --format svg",
                      &out) == 0);
  INFO(out);
  for (const char* f : {"boxes_per_image.svg", "box_heatmap.svg", "box_width.svg", "box_height.svg",
                        "box_size_kmeans.svg", "class_balance.svg", "age.svg", "sex.svg", "view_position.svg"})
    CHECK(read_text(dir / "out" / f).find("<svg") != std::string::npos);
  const std::string md = read_text(dir / "out" / "summary.md");
  CHECK(md.find(fmt::format("| patients | {} |", ids.size())) != std::string::npos);
  CHECK(md.find(fmt::format("| positive fraction | {:.2f} % |", 100.0 * positive.size() / ids.size())) !=
        std::string::npos);
  CHECK(md.find("k = 4") != std::string::npos);
  // dataset.limit is honoured.
  REQUIRE(run_command(shell_quote(chestlab_exe()) + " explore " + shell_quote(exp) + " --set dataset.limit=100 --out " +
                          shell_quote((dir / "limited").string()),
                      &out) == 0);
  CHECK(read_text(dir / "limited" / "summary.md").find("| patients | 100 |") != std::string::npos);
  // Another dataset is a configuration error naming the plugin it needs.
  const std::string quick = (test::source_dir() / "experiments" / "quickstart.toml").string();
  CHECK(run_command(shell_quote(chestlab_exe()) + " explore " + shell_quote(quick) + " --out " +
                        shell_quote((dir / "q").string()),
                    &out) == 2);
  CHECK(out.find("rsna_pneumonia") != std::string::npos);
}

namespace {

// Polls `page` until `ok(content)` or `seconds` pass; every read must be a whole page (the
// watcher replaces it by rename, so a reader never sees a part of one). Fails when the
// process `pid` ends first.
bool wait_for_page(const fs::path& page, int pid, double seconds, const std::function<bool(const std::string&)>& ok) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(page)) {
      const std::string html = read_text(page);
      const bool whole = html.rfind("<!DOCTYPE html>", 0) == 0 && html.size() > 8 &&
                         html.compare(html.size() - 8, 8, "</html>\n") == 0;
      CHECK(whole);
      if (!whole) return false;
      if (ok(html)) return true;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      FAIL("the watcher ended early, status " << status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// What the folder holds besides the page: the watcher's temporaries would show here.
std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

void append_epoch(RunFile& file, int fold, int epoch) {
  file.transaction([&](RunWriter& w) {
    HistoryRow row;
    row.epoch = epoch;
    row.lr = 1e-3;
    row.train_loss = 0.3;
    row.val_loss = 0.35;
    row.seconds = 1;
    row.metrics = {dice(fold, epoch), 0.95};
    w.append_epoch(fold, row);
    w.set_fold_best(fold, epoch, row.metrics[0], {});
  });
}

}  // namespace

TEST_CASE("chestlab report --watch rewrites the page as run files change, live while a run runs; SIGINT ends it",
          "[report][watch]") {
  const fs::path dir = test::scratch_dir("report_watch");
  const fs::path results = dir / "results";
  make_run(results / "a.h5", "run-a", 3, false, true);
  // Run b is being written: this test holds its writer (and so its lock) like a training run.
  RunMeta meta;
  meta.experiment = "reportdemo";
  meta.run_id = "run-b";
  meta.monitor = "dice";
  std::optional<RunFile> writer = RunFile::create((results / "b.h5").string(), meta, "", Environment{});
  writer->transaction([](RunWriter& w) { w.begin_fold(0, {"dice", "acc"}, {"a"}, {"b"}); });
  append_epoch(*writer, 0, 0);

  const fs::path page = dir / "site" / "report.html", log = dir / "watch.log";
  const int pid = spawn_process({chestlab_exe(), "report", results.string(), "--out", page.string(), "--watch", "1"},
                                log.string());
  REQUIRE(pid > 0);
  INFO(read_text(log));
  // Live while b runs: the refresh tag and the line saying so.
  REQUIRE(wait_for_page(page, pid, 15, [](const std::string& p) {
    return has(p, "<meta http-equiv=\"refresh\" content=\"1\">") && has(p, "live: refreshes every 1 s, last written ");
  }));
  CHECK(has(read_text(page), "run-a"));
  CHECK(has(read_text(page), "0.5000*"));
  // An epoch more in b: the page follows (b's best dice so far, not finished).
  append_epoch(*writer, 0, 1);
  CHECK(wait_for_page(page, pid, 15, [](const std::string& p) { return has(p, "0.5500*"); }));
  // A run file appears.
  make_run(results / "sub" / "c.h5", "run-c", 1, false, false);
  CHECK(wait_for_page(page, pid, 15, [](const std::string& p) { return has(p, "run-c"); }));
  // b ends: every run finished, so the page stops reloading.
  writer->transaction([](RunWriter& w) {
    w.set_fold_status(0, FoldStatus::Complete);
    w.write_summary();
    w.set_status(RunStatus::Complete);
    w.set_finished_now();
  });
  writer.reset();
  CHECK(wait_for_page(page, pid, 15, [](const std::string& p) {
    return !has(p, "http-equiv=\"refresh\"") && !has(p, "live:") && has(p, "reportdemo / run-b</a> (complete)");
  }));

  kill(pid, SIGINT);
  CHECK(wait_process(pid) == 130);
  const std::string out = read_text(log);
  INFO(out);
  CHECK(has(out, "stopped; " + page.string() + " is the last page written"));
  CHECK(std::count(out.begin(), out.end(), '\n') >= 5);  // "watching", 4 pages at least, "stopped"
  const std::string last = read_text(page);
  CHECK(last.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(last.compare(last.size() - 8, 8, "</html>\n") == 0);
  CHECK(has(last, "run-c"));
  CHECK(names_in(page.parent_path()) == std::vector<std::string>{"report.html"});  // no temporary left
}

TEST_CASE("chestlab report --watch tells a run killed with kill -9 from a running one", "[report][watch][e2e]") {
  const fs::path dir = test::scratch_dir("report_watch_kill");
  const fs::path out = dir / "out", page = dir / "report.html";
  const int run = spawn_process({chestlab_exe(), "run", (test::source_dir() / "tests" / "data" / "tiny.toml").string(),
                                 "--set", "train.epochs=400", "--quiet", "--output", out.string()},
                                (dir / "run.log").string());
  REQUIRE(run > 0);
  fs::create_directories(out);
  const int watcher = spawn_process({chestlab_exe(), "report", out.string(), "--out", page.string(), "--watch", "1"},
                                    (dir / "w.log").string());
  REQUIRE(watcher > 0);
  INFO(read_text(dir / "w.log") << read_text(dir / "run.log"));
  REQUIRE(wait_for_page(page, watcher, 25, [](const std::string& p) {
    return has(p, "<meta http-equiv=\"refresh\" content=\"1\">") && has(p, "status-running");
  }));
  kill(run, SIGKILL);
  CHECK(wait_process(run) == 128 + SIGKILL);
  // The file still says "running", but nobody holds its lock: no refresh, and it says why.
  CHECK(wait_for_page(page, watcher, 25, [](const std::string& p) {
    return !has(p, "http-equiv=\"refresh\"") && has(p, "no process is writing it");
  }));
  REQUIRE(test::run_files(out).size() == 1);
  CHECK(read_run(test::run_files(out).front().string(), LoadWeights::No).status == RunStatus::Running);
  kill(watcher, SIGTERM);
  CHECK(wait_process(watcher) == 130);
}

TEST_CASE("chestlab report --watch takes a positive number of seconds", "[report][watch]") {
  const fs::path dir = test::scratch_dir("report_watch_usage");
  fs::create_directories(dir / "results");
  for (const char* bad : {"--watch 0", "--watch -1", "--watch nan", "--watch inf", "--watch=abc", "--watch=",
                          "--watch 1e9"}) {
    std::string out;
    INFO(bad);
    CHECK(run_command(shell_quote(chestlab_exe()) + " report " + shell_quote((dir / "results").string()) + " --out " +
                          shell_quote((dir / "p.html").string()) + " " + bad,
                      &out) == 2);
    if (std::string(bad) != "--watch=") CHECK(has(out, "--watch takes a positive number of seconds"));
  }
  CHECK_FALSE(fs::exists(dir / "p.html"));
  // A bare --watch before the folder takes the default, 10 s (the folder is not taken for it).
  const fs::path page = dir / "p.html", log = dir / "w.log";
  const int pid =
      spawn_process({chestlab_exe(), "report", "--watch", (dir / "results").string(), "--out", page.string()}, log.string());
  REQUIRE(pid > 0);
  CHECK(wait_for_page(page, pid, 15, [](const std::string& p) { return has(p, "No run files found"); }));
  kill(pid, SIGTERM);
  CHECK(wait_process(pid) == 130);
  CHECK(has(read_text(log), "watching " + (dir / "results").string() + " every 10 s"));
  // A missing folder is a data error before any page, as without --watch.
  CHECK(run_command(shell_quote(chestlab_exe()) + " report " + shell_quote((dir / "nowhere").string()) +
                    " --watch 1 --out " + shell_quote((dir / "p.html").string())) == 3);
}
