// The host's own sections of an experiment file, declared with the same Schema machinery
// as plugin parameters: one validator reads both, and docs/`describe` list both alike.
// Constraints a ParamSpec cannot express (betas < 1 and list lengths, device names,
// run_folds < folds) are checked in config.cpp and stated in the docs here.
#include "chestlab/engine/config.h"

namespace chestlab {

const Schema& experiment_section_schema() {
  static const Schema schema = {
      param_required("name", ParamType::String,
                     "name of the experiment and of its results folder; letters, digits, '_', '.' and '-'"),
      param_int("seed", 42,
                "seed of every random choice: the dataset's (synthetic data), and of the folds and the training "
                "unless [cv] seed or [train] seed says otherwise")
          .at_least(0),
      param_string("output", "results", "folder the runs are written under, relative to the working directory"),
  };
  return schema;
}

const Schema& dataset_host_schema() {
  static const Schema schema = {
      param_required("plugin", ParamType::String, "dataset plugin (`chestlab plugins list`)"),
      param_string("on_error", "stop", "an unreadable sample stops the run, or is skipped and logged")
          .one_of({"stop", "skip"}),
  };
  return schema;
}

const Schema& component_host_schema() {
  static const Schema schema = {
      param_required("plugin", ParamType::String, "plugin name (`chestlab plugins list`)"),
  };
  return schema;
}

const Schema& model_host_schema() {
  static const Schema schema = {
      param_required("plugin", ParamType::String, "plugin name (`chestlab plugins list`)"),
      param_string("init", "",
                   "initial weights from a PyTorch state_dict file written by Python's torch.save (a checkpoint "
                   "dict holding one is read too, names joined with '.'); relative to the experiment file; "
                   "\"\" = the plugin's own initialisation"),
      param_strings("init_rename", {},
                    "\"from=to\" prefix rewrites of the file's tensor names before matching, first match wins "
                    "(\"module.=\" drops DataParallel's prefix, \"backbone.=encoder.\" renames)"),
      param_bool("init_partial", false,
                 "accept model tensors missing from the file (they keep their initialisation) and file tensors "
                 "the model lacks; shapes must match either way"),
  };
  return schema;
}

const Schema& scheduler_host_schema() {
  static const Schema schema = {
      param_string("plugin", "constant", "learning-rate scheduler plugin"),
      param_int("warmup_epochs", 0, "epochs of linear warm-up from 0 to lr before the scheduler takes over")
          .at_least(0),
  };
  return schema;
}

const Schema& metric_host_schema() {
  static const Schema schema = {
      param_required("plugin", ParamType::String, "metric plugin"),
      param_string("name", "", "column name in the results; default: the plugin name; must be unique"),
      param_bool("monitor", false,
                 "this metric selects the best epoch and drives early stopping (at most one; default: the first)"),
      param_string("mode", "max",
                   "whether larger (max) or smaller (min) values are better; default: the metric's own direction "
                   "(max for a metric where higher is better)")
          .one_of({"max", "min"}),
  };
  return schema;
}

const Schema& augment_host_schema() {
  static const Schema schema = {
      param_required("type", ParamType::String,
                     "augmentation name; its parameters (including the probability p) follow"),
  };
  return schema;
}

const Schema& optimizer_schema() {
  static const Schema schema = {
      param_string("name", "adam", "optimizer").one_of({"adam", "adamw", "sgd"}),
      param_float("lr", 1e-3, "learning rate").above(0),
      param_float("weight_decay", 0.0, "L2 penalty (decoupled for adamw)").at_least(0),
      param_floats("betas", {0.9, 0.999}, "adam/adamw: two decay rates, each in [0, 1)").range(0, 1),
      param_float("momentum", 0.9, "sgd only: momentum").range(0, 1),
      param_bool("nesterov", false, "sgd only: Nesterov momentum"),
  };
  return schema;
}

const Schema& train_schema() {
  static const Schema schema = {
      param_int("epochs", 10, "passes over the training set").at_least(1),
      param_int("batch_size", 16, "samples per batch").at_least(1),
      param_string("device", "auto", "auto (cuda if available, else cpu), cpu, cuda or cuda:N"),
      param_int("workers", 2, "data-loading threads").at_least(0),
      param_int("prefetch", 4, "batches prepared ahead of the training loop").at_least(1),
      param_int("threads", 0, "compute threads; 0 = the machine's cores").at_least(0),
      param_float("grad_clip", 0.0, "clip the gradient norm to this value; 0 = off").at_least(0),
      param_int("early_stopping", 0, "stop after this many epochs without improvement of the monitor; 0 = off")
          .at_least(0),
      param_bool("deterministic", true, "deterministic algorithms: reruns give identical numbers (slower)"),
      param_bool("tensorboard", false,
                 "also write TensorBoard event files under <output>/<name>/tb/<run id>/fold<k>/ (not part of the "
                 "config hash)"),
      param_int("tensorboard_every", 10,
                "with tensorboard: the running training loss every this many batches; 0 = per-epoch events only")
          .at_least(0),
      param_int("seed", 42,
                "seed of the training: weight initialisation, sample order, augmentation; default: [experiment] "
                "seed. A sweep may vary it, the folds staying as they are")
          .at_least(0),
      param_string("precision", "fp32",
                   "arithmetic of the forward pass and loss: fp32, or autocast to bf16 (CPU or CUDA) or fp16 "
                   "(CUDA only, with a gradient scaler); weights stay fp32")
          .one_of({"fp32", "bf16", "fp16"}),
  };
  return schema;
}

const Schema& cv_schema() {
  static const Schema schema = {
      param_string("mode", "kfold", "k-fold cross-validation, or one train/validation/test split")
          .one_of({"kfold", "holdout"}),
      param_int("folds", 5, "kfold: number of folds").at_least(2),
      param_int("repeats", 1,
                "kfold: repeated cross-validation, this many fold assignments (each from its own seed, the "
                "first from seed); fold model r * folds + j validates fold j of repeat r")
          .range(1, 100),
      param_bool("stratify", true, "keep the class balance of the dataset in every fold/split"),
      param_int("seed", 42, "seed of the fold assignment (and of holdout_order = \"random\"); default: [experiment] seed")
          .at_least(0),
      param_string("splits", "",
                   "a split file (CSV, as `chestlab splits` writes) giving every sample's fold or holdout part, "
                   "checked against the dataset; relative to the experiment file; \"\" = folds from the seed"),
      param_ints("run_folds", {}, "kfold: run only these folds (each < folds); empty = all").at_least(0),
      param_floats("holdout", {0.6, 0.2, 0.2}, "holdout: train, validation and test fractions, summing to 1")
          .range(0, 1),
      param_string("holdout_order", "file", "holdout: split in file order or after a seeded shuffle")
          .one_of({"file", "random"}),
  };
  return schema;
}

const std::vector<HostSection>& host_sections() {
  static const std::vector<HostSection> sections = {
      {"experiment", "[experiment]", "what the experiment is called and where its runs go",
       &experiment_section_schema(), false, true},
      {"dataset", "[dataset]", "where the images and labels come from", &dataset_host_schema(), true, true},
      {"dataset.augment", "[[dataset.augment]]", "training-time augmentations, applied in order",
       &augment_host_schema(), true, false},
      {"model", "[model]", "the network", &model_host_schema(), true, true},
      {"loss", "[loss]", "the training objective", &component_host_schema(), true, true},
      {"optimizer", "[optimizer]", "how the weights are updated", &optimizer_schema(), false, false},
      {"scheduler", "[scheduler]", "how the learning rate changes over epochs", &scheduler_host_schema(), true,
       false},
      {"metrics", "[[metrics]]", "what is measured on the validation set (one or more)", &metric_host_schema(),
       true, true},
      {"train", "[train]", "the training loop", &train_schema(), false, false},
      {"cv", "[cv]", "how the data is split into training, validation and test", &cv_schema(), false, false},
  };
  return sections;
}

}  // namespace chestlab
