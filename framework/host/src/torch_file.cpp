#include "chestlab/host/torch_file.h"

#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "chestlab/errors.h"

namespace chestlab {

namespace {

// ---- a pickle reader for what torch.save writes ----------------------------------------

struct Node;
using NodePtr = std::shared_ptr<Node>;

struct Node {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor, Mark } kind = None;
  std::int64_t i = 0;
  double f = 0;
  std::string s, s2;                      // Str; Global module and name
  std::vector<NodePtr> items;             // Tuple, List
  std::vector<std::pair<NodePtr, NodePtr>> dict;  // Dict, in insertion order
  torch::Tensor tensor;                   // Storage (1-D), Tensor
};

NodePtr make(Node::Kind kind) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  return n;
}

torch::Dtype storage_dtype(const std::string& name) {
  static const std::map<std::string, torch::Dtype> types = {
      {"FloatStorage", torch::kFloat32}, {"DoubleStorage", torch::kFloat64}, {"HalfStorage", torch::kFloat16},
      {"BFloat16Storage", torch::kBFloat16}, {"LongStorage", torch::kInt64}, {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},  {"CharStorage", torch::kInt8},      {"ByteStorage", torch::kUInt8},
      {"BoolStorage", torch::kBool}};
  const auto it = types.find(name);
  if (it == types.end()) throw std::runtime_error("unsupported storage type torch." + name);
  return it->second;
}

class Unpickler {
 public:
  Unpickler(const char* data, std::size_t size, caffe2::serialize::PyTorchStreamReader& reader,
            std::string prefix)
      : p_(data), end_(data + size), reader_(reader), prefix_(std::move(prefix)) {}

  NodePtr run() {
    for (;;) {
      const auto op = static_cast<unsigned char>(byte());
      switch (op) {
        case 0x80: byte(); break;                       // PROTO
        case 0x95: bytes(8); break;                     // FRAME
        case '.': return pop();                         // STOP
        case '(': push(make(Node::Mark)); break;        // MARK
        case 'N': push(make(Node::None)); break;
        case 0x88: case 0x89: {                         // NEWTRUE, NEWFALSE
          auto n = make(Node::Bool);
          n->i = op == 0x88;
          push(n);
          break;
        }
        case 'K': push_int(static_cast<unsigned char>(byte())); break;  // BININT1
        case 'M': push_int(static_cast<std::uint16_t>(le(2))); break;   // BININT2
        case 'J': push_int(static_cast<std::int32_t>(le(4))); break;    // BININT
        case 0x8a: {                                                   // LONG1
          const auto n = static_cast<unsigned char>(byte());
          if (n > 8) throw std::runtime_error("integer too large");
          std::uint64_t v = le(n);
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t{0} << (8 * n);  // sign-extend
          push_int(static_cast<std::int64_t>(v));
          break;
        }
        case 'G': {                                                    // BINFLOAT, big-endian
          std::uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<unsigned char>(byte());
          auto n = make(Node::Float);
          std::memcpy(&n->f, &bits, 8);
          push(n);
          break;
        }
        case 'X': push_str(bytes(le(4))); break;        // BINUNICODE
        case 0x8c: push_str(bytes(static_cast<unsigned char>(byte()))); break;  // SHORT_BINUNICODE
        case 'U': push_str(bytes(static_cast<unsigned char>(byte()))); break;   // SHORT_BINSTRING
        case 'T': push_str(bytes(le(4))); break;        // BINSTRING
        case 'C': push_str(bytes(static_cast<unsigned char>(byte()))); break;   // SHORT_BINBYTES
        case 'B': push_str(bytes(le(4))); break;        // BINBYTES
        case ')': push(make(Node::Tuple)); break;       // EMPTY_TUPLE
        case ']': push(make(Node::List)); break;        // EMPTY_LIST
        case '}': push(make(Node::Dict)); break;        // EMPTY_DICT
        case 't': {                                     // TUPLE
          auto n = make(Node::Tuple);
          n->items = pop_to_mark();
          push(n);
          break;
        }
        case 0x85: case 0x86: case 0x87: {              // TUPLE1..3
          auto n = make(Node::Tuple);
          n->items.resize(op - 0x84);
          for (auto it = n->items.rbegin(); it != n->items.rend(); ++it) *it = pop();
          push(n);
          break;
        }
        case 'q': memo_[static_cast<unsigned char>(byte())] = top(); break;  // BINPUT
        case 'r': memo_[le(4)] = top(); break;                             // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;                     // MEMOIZE
        case 'h': push(memo(static_cast<unsigned char>(byte()))); break;   // BINGET
        case 'j': push(memo(le(4))); break;                                // LONG_BINGET
        case 'c': {                                                        // GLOBAL
          auto n = make(Node::Global);
          n->s = line();
          n->s2 = line();
          push(n);
          break;
        }
        case 'a': {                                     // APPEND
          auto v = pop();
          top()->items.push_back(v);
          break;
        }
        case 'e': {                                     // APPENDS
          auto values = pop_to_mark();
          auto list = top();
          list->items.insert(list->items.end(), values.begin(), values.end());
          break;
        }
        case 's': {                                     // SETITEM
          auto v = pop();
          auto k = pop();
          top()->dict.emplace_back(k, v);
          break;
        }
        case 'u': {                                     // SETITEMS
          auto values = pop_to_mark();
          auto d = top();
          for (std::size_t k = 0; k + 1 < values.size(); k += 2) d->dict.emplace_back(values[k], values[k + 1]);
          break;
        }
        case 'Q': push(persistent(pop())); break;       // BINPERSID
        case 'R': {                                     // REDUCE
          auto args = pop();
          auto callable = pop();
          push(reduce(*callable, *args));
          break;
        }
        case 'b': pop(); break;  // BUILD: state such as a state_dict's _metadata; not needed
        default:
          throw std::runtime_error(fmt::format("unsupported pickle opcode 0x{:02x}", op));
      }
    }
  }

 private:
  char byte() {
    if (p_ >= end_) throw std::runtime_error("the pickle ends early");
    return *p_++;
  }
  std::string bytes(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) throw std::runtime_error("the pickle ends early");
    std::string out(p_, n);
    p_ += n;
    return out;
  }
  std::uint64_t le(int n) {
    std::uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(byte())) << (8 * k);
    return v;
  }
  std::string line() {
    std::string out;
    for (char c = byte(); c != '\n'; c = byte()) out += c;
    return out;
  }
  void push(NodePtr n) { stack_.push_back(std::move(n)); }
  void push_int(std::int64_t v) {
    auto n = make(Node::Int);
    n->i = v;
    push(n);
  }
  void push_str(std::string s) {
    auto n = make(Node::Str);
    n->s = std::move(s);
    push(n);
  }
  NodePtr pop() {
    if (stack_.empty()) throw std::runtime_error("pickle stack underflow");
    auto n = stack_.back();
    stack_.pop_back();
    return n;
  }
  NodePtr& top() {
    if (stack_.empty()) throw std::runtime_error("pickle stack underflow");
    return stack_.back();
  }
  std::vector<NodePtr> pop_to_mark() {
    std::vector<NodePtr> out;
    for (;;) {
      auto n = pop();
      if (n->kind == Node::Mark) break;
      out.push_back(n);
    }
    return {out.rbegin(), out.rend()};
  }
  NodePtr memo(std::uint64_t k) {
    const auto it = memo_.find(k);
    if (it == memo_.end()) throw std::runtime_error("pickle refers to an unknown memo entry");
    return it->second;
  }

  // ('storage', torch.FloatStorage, key, location, numel) -> the storage's bytes as a 1-D tensor.
  NodePtr persistent(const NodePtr& pid) {
    if (pid->kind != Node::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage" ||
        pid->items[1]->kind != Node::Global)
      throw std::runtime_error("unsupported persistent id (not a tensor storage)");
    const std::string key = pid->items[2]->s;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const torch::Dtype dtype = storage_dtype(pid->items[1]->s2);
    const std::int64_t numel = pid->items[4]->i;
    auto [data, size] = reader_.getRecord(prefix_ + "data/" + key);
    const auto element = torch::elementSize(dtype);
    if (size != static_cast<std::size_t>(numel) * element)
      throw std::runtime_error(fmt::format("storage {} holds {} bytes, expected {} x {}", key, size, numel, element));
    auto n = make(Node::Storage);
    n->tensor = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    if (size > 0) std::memcpy(n->tensor.data_ptr(), data.get(), size);
    storages_[key] = n;
    return n;
  }

  static std::vector<std::int64_t> ints(const Node& tuple) {
    std::vector<std::int64_t> out;
    for (const auto& item : tuple.items) out.push_back(item->i);
    return out;
  }

  NodePtr reduce(const Node& callable, const Node& args) {
    if (callable.kind != Node::Global) throw std::runtime_error("unsupported pickle REDUCE");
    const std::string name = callable.s + "." + callable.s2;
    if (name == "collections.OrderedDict") return make(Node::Dict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      // (storage, storage_offset, size, stride, ...)
      if (args.items.size() < 4 || args.items[0]->kind != Node::Storage)
        throw std::runtime_error("malformed tensor in the pickle");
      auto n = make(Node::Tensor);
      n->tensor = args.items[0]->tensor.as_strided(ints(*args.items[2]), ints(*args.items[3]), args.items[1]->i).clone();
      return n;
    }
    if (name == "torch._utils._rebuild_parameter") {  // (data, requires_grad, hooks)
      if (args.items.empty() || args.items[0]->kind != Node::Tensor)
        throw std::runtime_error("malformed parameter in the pickle");
      return args.items[0];
    }
    throw std::runtime_error("unsupported object " + name +
                             " (chestlab reads tensors in dicts, lists and tuples: a state_dict or a checkpoint)");
  }

  const char* p_;
  const char* end_;
  caffe2::serialize::PyTorchStreamReader& reader_;
  std::string prefix_;
  std::vector<NodePtr> stack_;
  std::map<std::uint64_t, NodePtr> memo_;
  std::map<std::string, NodePtr> storages_;
};

void flatten(const NodePtr& node, const std::string& name, NamedTensors& out) {
  auto join = [&](const std::string& key) { return name.empty() ? key : name + "." + key; };
  switch (node->kind) {
    case Node::Tensor: out.emplace_back(name, node->tensor); break;
    case Node::Dict:
      for (const auto& [k, v] : node->dict) {
        if (k->kind == Node::Str) flatten(v, join(k->s), out);
        else if (k->kind == Node::Int) flatten(v, join(std::to_string(k->i)), out);
      }
      break;
    case Node::List:
    case Node::Tuple:
      for (std::size_t i = 0; i < node->items.size(); ++i) flatten(node->items[i], join(std::to_string(i)), out);
      break;
    default: break;  // numbers, strings, None: not weights
  }
}

std::string shape_text(torch::IntArrayRef sizes) {
  std::string out = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

std::string list_lines(const std::vector<std::string>& items) {
  constexpr std::size_t kShown = 30;
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < kShown; ++i) out += "\n    " + items[i];
  if (items.size() > kShown) out += fmt::format("\n    ... and {} more", items.size() - kShown);
  return out;
}

}  // namespace

NamedTensors read_torch_file(const std::string& path) {
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DataError(path, "cannot open the file");
    char magic[2] = {};
    in.read(magic, 2);
    if (magic[0] != 'P' || magic[1] != 'K')
      throw DataError(path, "not a zip-format torch.save file (PyTorch >= 1.6 writes one; a file saved with "
                            "_use_new_zipfile_serialization=False must be re-saved with the default)");
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    // Records are "<archive>/data.pkl", "<archive>/data/0", ...; the reader strips <archive>/.
    auto [data, size] = reader.getRecord("data.pkl");
    Unpickler unpickler(static_cast<const char*>(data.get()), size, reader, "");
    NamedTensors out;
    flatten(unpickler.run(), "", out);
    if (out.empty()) throw std::runtime_error("the file holds no tensors");
    return out;
  } catch (const DataError&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (const auto cut = what.find("\nException raised from"); cut != std::string::npos) what.resize(cut);
    throw DataError(path, "cannot read it as a torch.save file: " + what);
  }
}

void write_torch_file(const std::string& path, const NamedTensors& tensors) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, tensor] : tensors) dict.insert(name, tensor.detach().to(torch::kCPU).contiguous());
  const std::vector<char> bytes = torch::jit::pickle_save(dict);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw DataError(path, "cannot open for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw DataError(path, "write failed (disk full?)");
}

std::vector<std::pair<std::string, std::string>> parse_rename(const std::vector<std::string>& entries) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : entries) {
    const auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError(fmt::format("model.init_rename: \"{}\" is not \"from=to\" (a file-name prefix, '=', the "
                                    "model's prefix, which may be empty)",
                                    e));
    out.emplace_back(e.substr(0, eq), e.substr(eq + 1));
  }
  return out;
}

std::size_t init_from_torch_file(torch::nn::Module& model, const InitOptions& options) {
  const NamedTensors file = read_torch_file(options.file);
  std::map<std::string, torch::Tensor> targets;
  std::vector<std::string> order;
  for (const auto& p : model.named_parameters(true)) {
    targets[p.key()] = p.value();
    order.push_back(p.key());
  }
  for (const auto& b : model.named_buffers(true)) {
    targets[b.key()] = b.value();
    order.push_back(b.key());
  }

  std::vector<std::string> unexpected, mismatched;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (model tensor, file tensor)
  std::set<std::string> loaded;
  for (const auto& [file_name, tensor] : file) {
    std::string name = file_name;
    for (const auto& [from, to] : options.rename)
      if (name.compare(0, from.size(), from) == 0) {
        name = to + name.substr(from.size());
        break;
      }
    const auto it = targets.find(name);
    if (it == targets.end()) {
      unexpected.push_back(name == file_name ? name : file_name + " (as " + name + ")");
      continue;
    }
    if (it->second.sizes() != tensor.sizes()) {
      mismatched.push_back(fmt::format("{}: model {}, file {}", name, shape_text(it->second.sizes()),
                                       shape_text(tensor.sizes())));
      continue;
    }
    copies.emplace_back(it->second, tensor);
    loaded.insert(name);
  }
  std::vector<std::string> missing;
  for (const auto& name : order)
    if (!loaded.count(name) && std::find_if(mismatched.begin(), mismatched.end(), [&](const std::string& m) {
                                 return m.compare(0, name.size() + 1, name + ":") == 0;
                               }) == mismatched.end())
      missing.push_back(name);

  std::string problems;
  if (!mismatched.empty()) problems += fmt::format("\n  {} shape mismatch(es):{}", mismatched.size(), list_lines(mismatched));
  if (!options.partial && !missing.empty())
    problems += fmt::format("\n  {} model tensor(s) missing from the file:{}", missing.size(), list_lines(missing));
  if (!options.partial && !unexpected.empty())
    problems += fmt::format("\n  {} unexpected tensor(s) in the file:{}", unexpected.size(), list_lines(unexpected));
  if (copies.empty() && problems.empty()) problems = "\n  no tensor of the file matches a model tensor";
  if (!problems.empty())
    throw ConfigError(fmt::format("model.init = \"{}\": the file does not fit the model{}\n(model.init_rename maps "
                                  "file prefixes to model prefixes, e.g. [\"module.=\"]; model.init_partial = true "
                                  "accepts missing and unexpected tensors)",
                                  options.file, problems));
  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(source.to(target.device(), target.scalar_type()));
  return copies.size();
}

}  // namespace chestlab
