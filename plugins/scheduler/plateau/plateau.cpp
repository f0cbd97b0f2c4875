#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

#include "plateau.h"

namespace chestlab::plateau {

namespace {

constexpr const char* kStateTag = "plateau/1";

double worst_value(bool maximize) {
  const double inf = std::numeric_limits<double>::infinity();
  return maximize ? -inf : inf;
}

[[noreturn]] void bad_state(const std::string& state, const std::string& why) {
  throw std::runtime_error(fmt::format(
      "scheduler 'plateau': cannot restore the saved state \"{}\" from the checkpoint: {}", state, why));
}

// "key=value" fields after the tag, every expected key exactly once.
std::map<std::string, std::string> state_fields(const std::string& state) {
  std::istringstream in(state);
  std::string tag;
  in >> tag;
  if (tag != kStateTag) bad_state(state, fmt::format("it does not start with '{}'", kStateTag));
  std::map<std::string, std::string> fields;
  for (std::string word; in >> word;) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) bad_state(state, fmt::format("'{}' is not key=value", word));
    if (!fields.emplace(word.substr(0, eq), word.substr(eq + 1)).second) {
      bad_state(state, fmt::format("'{}' appears twice", word.substr(0, eq)));
    }
  }
  for (const char* key : {"lr", "best", "bad_epochs", "cooldown_counter"}) {
    if (!fields.count(key)) bad_state(state, fmt::format("field '{}' is missing", key));
  }
  return fields;
}

template <class Number>
Number parse_number(const std::string& state, const std::string& key, const std::string& text) {
  Number value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) bad_state(state, fmt::format("{}='{}' is not a number", key, text));
  return value;
}

}  // namespace

PlateauSchedule::PlateauSchedule(PlateauOptions options)
    : options_(options), best_(worst_value(options.maximize)) {}

double PlateauSchedule::lr(const ScheduleState& state) {
  if (!current_lr_) current_lr_ = state.base_lr;
  return *current_lr_;
}

bool PlateauSchedule::better(double value) const {
  const double t = options_.threshold;
  if (options_.maximize) {
    return options_.relative_threshold ? value > best_ * (1.0 + t) : value > best_ + t;
  }
  return options_.relative_threshold ? value < best_ * (1.0 - t) : value < best_ - t;
}

void PlateauSchedule::reduce() {
  if (!current_lr_) {
    // The host always asks for the epoch's rate before it observes the epoch's metric.
    throw std::logic_error("scheduler 'plateau': observe() was called before any lr() call");
  }
  const double old_lr = *current_lr_;
  const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
  if (old_lr - new_lr > options_.eps) current_lr_ = new_lr;
}

void PlateauSchedule::observe(std::int64_t /*epoch*/, double monitored) {
  if (better(monitored)) {
    best_ = monitored;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    bad_epochs_ = 0;  // bad epochs during the cooldown do not count
  }
  if (bad_epochs_ > options_.patience) {
    reduce();
    cooldown_counter_ = options_.cooldown;
    bad_epochs_ = 0;
  }
}

std::string PlateauSchedule::save_state() const {
  // fmt's "{}" is the shortest text that parses back to the same double (inf as "inf").
  const std::string lr = current_lr_ ? fmt::format("{}", *current_lr_) : "unset";
  return fmt::format("{} lr={} best={} bad_epochs={} cooldown_counter={}", kStateTag, lr, best_, bad_epochs_,
                     cooldown_counter_);
}

void PlateauSchedule::load_state(const std::string& state) {
  if (state.empty()) {
    *this = PlateauSchedule(options_);
    return;
  }
  const auto fields = state_fields(state);
  const std::string& lr = fields.at("lr");
  std::optional<double> restored_lr;
  if (lr != "unset") restored_lr = parse_number<double>(state, "lr", lr);
  const double best = parse_number<double>(state, "best", fields.at("best"));
  const auto bad_epochs = parse_number<std::int64_t>(state, "bad_epochs", fields.at("bad_epochs"));
  const auto cooldown_counter = parse_number<std::int64_t>(state, "cooldown_counter", fields.at("cooldown_counter"));
  if (bad_epochs < 0 || cooldown_counter < 0) bad_state(state, "the counters must not be negative");
  current_lr_ = restored_lr;
  best_ = best;
  bad_epochs_ = bad_epochs;
  cooldown_counter_ = cooldown_counter;
}

}  // namespace chestlab::plateau
