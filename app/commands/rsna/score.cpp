// chestlab score SUBMISSION.csv --labels LABELS.csv [--verbose]
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <iostream>
#include <unordered_map>

#include "chestlab/errors.h"
#include "chestlab/rsna/labels.h"
#include "chestlab/rsna/metric.h"
#include "chestlab/rsna/submission.h"
#include "cli.h"
#include "command.h"

namespace po = boost::program_options;

namespace chestlab::app {
namespace {

constexpr const char* kUsage =
    "usage: chestlab score SUBMISSION.csv --labels LABELS.csv [--verbose]\n\n"
    "Scores an RSNA submission (patientId,PredictionString) with the competition's metric:\n"
    "the mean over images of the mean over IoU thresholds 0.40, 0.45, ..., 0.75 of\n"
    "TP / (TP + FP + FN). Images with neither boxes nor predictions are not counted.\n"
    "Patients of the labels missing from the submission count as predicting nothing;\n"
    "patients of the submission missing from the labels are an error (exit 3).\n\n";

constexpr std::size_t kMaxNamedPatients = 5;

int usage_error(const std::string& message, const po::options_description& options) {
  std::cerr << "error: " << message << "\n\n" << kUsage << options;
  return kExitUsage;
}

// Every submitted patient must be labelled: a typo'd or foreign id would otherwise be
// dropped silently and the score would look better than it is.
void check_patients_known(const rsna::Submission& submission, const RsnaLabels& labels,
                          const std::string& submission_path, const std::string& labels_path) {
  std::vector<std::string> unknown;
  for (const rsna::SubmissionRow& row : submission)
    if (!labels.find(row.patient_id)) unknown.push_back(row.patient_id);
  if (unknown.empty()) return;
  std::string named;
  for (std::size_t i = 0; i < unknown.size() && i < kMaxNamedPatients; ++i)
    named += (i ? ", " : "") + unknown[i];
  if (unknown.size() > kMaxNamedPatients) named += ", ...";
  throw DataError(submission_path,
                  fmt::format("{} patient(s) are not in the labels file {}: {}", unknown.size(),
                              labels_path, named));
}

rsna::MapResult score(const rsna::Submission& submission, const RsnaLabels& labels,
                      std::size_t& unsubmitted) {
  std::unordered_map<std::string, const rsna::SubmissionRow*> by_patient;
  for (const rsna::SubmissionRow& row : submission) by_patient.emplace(row.patient_id, &row);
  static const std::vector<ScoredBox> no_predictions;
  rsna::RsnaMapAccumulator accumulator;
  unsubmitted = 0;
  for (const RsnaPatient& patient : labels.patients) {
    auto it = by_patient.find(patient.patient_id);
    if (it == by_patient.end()) ++unsubmitted;
    accumulator.add(patient.boxes, it == by_patient.end() ? no_predictions : it->second->boxes);
  }
  return accumulator.result();
}

void print_result(const rsna::MapResult& result, bool verbose) {
  std::cout << fmt::format("score: {:.6f}\n", result.score);
  std::cout << fmt::format("images counted: {} (skipped {} with neither boxes nor predictions)\n",
                           result.images_counted, result.images_skipped);
  if (!verbose) return;
  std::cout << "per IoU threshold:\n";
  for (std::size_t i = 0; i < result.per_threshold.size(); ++i)
    std::cout << fmt::format("  {:.2f}  {:.6f}\n", rsna::map_thresholds()[i],
                             result.per_threshold[i]);
}

int run_score(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "labels", po::value<std::string>(), "the labels table (stage_2_train_labels.csv)")(
      "verbose,v", "also print the score at each IoU threshold");
  po::options_description hidden;
  hidden.add_options()("submission", po::value<std::vector<std::string>>(), "submission file");
  po::positional_options_description positional;
  positional.add("submission", -1);
  po::variables_map vm;
  if (auto done = parse_command_line(args, kUsage, options, hidden, positional, vm)) return *done;
  if (!vm.count("submission")) return usage_error("no submission file given", options);
  const auto submissions = vm["submission"].as<std::vector<std::string>>();
  if (submissions.size() != 1)
    return usage_error(fmt::format("expected one submission file, got {}", submissions.size()),
                       options);
  if (!vm.count("labels")) return usage_error("--labels LABELS.csv is required", options);

  const std::string& submission_path = submissions.front();
  const std::string labels_path = vm["labels"].as<std::string>();
  const RsnaLabels labels = read_rsna_labels(labels_path, "", "");
  for (const std::string& warning : labels.warnings) std::cerr << "warning: " << warning << "\n";
  const rsna::Submission submission = rsna::read_submission(submission_path);
  check_patients_known(submission, labels, submission_path, labels_path);

  std::size_t unsubmitted = 0;
  const rsna::MapResult result = score(submission, labels, unsubmitted);
  if (unsubmitted > 0)
    std::cerr << fmt::format(
        "note: {} of {} labelled patients have no row in {}; they count as predicting nothing\n",
        unsubmitted, labels.patients.size(), submission_path);
  print_result(result, vm.count("verbose") > 0);
  return kExitOk;
}

const Command registration{"score", "score an RSNA submission with the competition metric",
                           &run_score};

}  // namespace
}  // namespace chestlab::app
