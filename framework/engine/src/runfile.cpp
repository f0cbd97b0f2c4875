// Run files: HDF5 layout (docs/results-format.md) and atomic transactions.
#include "chestlab/engine/runfile.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <new>
#include <set>
#include <stdexcept>
#include <type_traits>
#include <variant>

#include "chestlab/engine/file_lock.h"
#include "chestlab/engine/hdf5.h"
#include "chestlab/errors.h"

namespace fs = std::filesystem;

namespace chestlab {

// ---- status names ---------------------------------------------------------------------

const char* to_string(RunStatus status) {
  switch (status) {
    case RunStatus::Running: return "running";
    case RunStatus::Complete: return "complete";
    case RunStatus::Interrupted: return "interrupted";
    case RunStatus::Failed: return "failed";
  }
  return "?";
}

const char* to_string(FoldStatus status) {
  switch (status) {
    case FoldStatus::Pending: return "pending";
    case FoldStatus::Running: return "running";
    case FoldStatus::Complete: return "complete";
    case FoldStatus::Failed: return "failed";
    case FoldStatus::Interrupted: return "interrupted";
    case FoldStatus::StoppedEarly: return "stopped_early";
  }
  return "?";
}

const char* to_string(MonitorMode mode) { return mode == MonitorMode::Max ? "max" : "min"; }

template <typename Enum>
static bool parse_enum(const std::string& text, std::initializer_list<Enum> all, Enum& out) {
  for (Enum e : all) {
    if (text == to_string(e)) {
      out = e;
      return true;
    }
  }
  return false;
}

bool parse_run_status(const std::string& text, RunStatus& out) {
  return parse_enum(text, {RunStatus::Running, RunStatus::Complete, RunStatus::Interrupted, RunStatus::Failed},
                    out);
}

bool parse_fold_status(const std::string& text, FoldStatus& out) {
  return parse_enum(text,
                    {FoldStatus::Pending, FoldStatus::Running, FoldStatus::Complete, FoldStatus::Failed,
                     FoldStatus::Interrupted, FoldStatus::StoppedEarly},
                    out);
}

bool parse_monitor_mode(const std::string& text, MonitorMode& out) {
  return parse_enum(text, {MonitorMode::Max, MonitorMode::Min}, out);
}

bool is_finished(FoldStatus status) {
  return status == FoldStatus::Complete || status == FoldStatus::StoppedEarly;
}

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

// ---- plain-data helpers ---------------------------------------------------------------

const std::vector<double>* PerImageScores::column(const std::string& metric) const {
  for (std::size_t m = 0; m < metrics.size() && m < values.size(); ++m)
    if (metrics[m] == metric) return &values[m];
  return nullptr;
}

const HistoryRow* FoldInfo::row_for_epoch(std::int64_t epoch) const {
  for (const HistoryRow& row : history)
    if (row.epoch == epoch) return &row;
  return nullptr;
}

std::optional<double> FoldInfo::best_metric(const std::string& metric) const {
  if (best_epoch < 0) return std::nullopt;
  const HistoryRow* row = row_for_epoch(best_epoch);
  if (!row) return std::nullopt;
  for (std::size_t i = 0; i < metric_names.size() && i < row->metrics.size(); ++i)
    if (metric_names[i] == metric) return row->metrics[i];
  return std::nullopt;
}

const FoldInfo* RunInfo::fold(int index) const {
  for (const FoldInfo& f : folds)
    if (f.index == index) return &f;
  return nullptr;
}

std::vector<SummaryRow> compute_summary(const std::vector<FoldInfo>& folds) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> values;
  for (const FoldInfo& fold : folds) {
    if (!is_finished(fold.status)) continue;
    for (const std::string& metric : fold.metric_names) {
      std::optional<double> v = fold.best_metric(metric);
      if (!v) continue;
      if (!values.count(metric)) order.push_back(metric);
      values[metric].push_back(*v);
    }
  }
  std::vector<SummaryRow> rows;
  for (const std::string& metric : order) {
    const std::vector<double>& v = values[metric];
    const double n = static_cast<double>(v.size());
    double sum = 0;
    for (double x : v) sum += x;
    const double mean = sum / n;
    double squares = 0;
    for (double x : v) squares += (x - mean) * (x - mean);
    const double sd = v.size() > 1 ? std::sqrt(squares / (n - 1)) : 0.0;
    rows.push_back({metric, mean, sd, static_cast<std::int64_t>(v.size())});
  }
  return rows;
}

// ---- HDF5 plumbing --------------------------------------------------------------------

namespace {

static_assert(std::is_same_v<hid_t, std::int64_t>, "RunWriter stores hid_t as int64_t");
static_assert(sizeof(char*) == 8 && sizeof(double) == 8, "tables pack 8-byte fields");

const char* const kHistoryFixed[] = {"epoch", "lr", "train_loss", "val_loss", "seconds"};
constexpr hsize_t kTableChunkRows = 64;

using hdf5::Handle;
using hdf5::silence_errors;

herr_t keep_innermost(unsigned, const H5E_error2_t* err, void* data) {
  if (err->desc && *err->desc) *static_cast<std::string*>(data) = err->desc;
  return 0;
}

// The most specific message of HDF5's error stack (e.g. "file signature not found").
std::string hdf5_detail() {
  std::string detail;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, keep_innermost, &detail);
  return detail;
}

// Call right after an HDF5 call failed, before any other HDF5 call resets the error stack.
[[noreturn]] void fail(const std::string& what) {
  std::string detail = hdf5_detail();
  throw std::runtime_error(detail.empty() ? what : what + " (HDF5: " + detail + ")");
}

[[noreturn]] void invalid(const std::string& what) { throw std::runtime_error(what); }

hid_t check_id(hid_t id, const std::string& what) {
  if (id < 0) fail(what);
  return id;
}

void check(herr_t status, const std::string& what) {
  if (status < 0) fail(what);
}

bool check_tri(htri_t value, const std::string& what) {
  if (value < 0) fail(what);
  return value > 0;
}

// `id` owned, or the failure of the call that made it as an exception.
Handle owned(hid_t id, const std::string& what) { return Handle(check_id(id, what)); }

Handle utf8_string_type() {
  Handle t = owned(H5Tcopy(H5T_C_S1), "copy string type");
  check(H5Tset_size(t.get(), H5T_VARIABLE), "make string type variable-length");
  check(H5Tset_cset(t.get(), H5T_CSET_UTF8), "set UTF-8");
  return t;
}

Handle scalar_space() { return owned(H5Screate(H5S_SCALAR), "create scalar dataspace"); }

Handle simple_space(const std::vector<hsize_t>& dims, const std::vector<hsize_t>* maxdims = nullptr) {
  if (dims.empty()) return scalar_space();
  return owned(H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                       maxdims ? maxdims->data() : nullptr),
                      "create dataspace");
}

// Files stay readable by HDF5 1.8 and later (h5py 3.x included); objects close with the file.
Handle file_access_plist() {
  Handle fapl = owned(H5Pcreate(H5P_FILE_ACCESS), "create file access list");
  check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_EARLIEST, H5F_LIBVER_V18), "set format bounds");
  check(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), "set close degree");
  return fapl;
}

// The first bytes of every run file are a user block (HDF5 leaves it to the application)
// holding the seal: see seal() below.
constexpr std::size_t kUserBlock = 512;

// Only ever a fresh temporary: EXCL, so that nothing is overwritten if a name came twice.
Handle create_file(const std::string& path) {
  Handle fapl = file_access_plist();
  Handle fcpl = owned(H5Pcreate(H5P_FILE_CREATE), "create file creation list");
  check(H5Pset_userblock(fcpl.get(), kUserBlock), "reserve the user block");
  return owned(H5Fcreate(path.c_str(), H5F_ACC_EXCL, fcpl.get(), fapl.get()), "create " + path);
}

// Whether the open file has chestlab's user block (files written before the seal have none).
bool has_user_block(hid_t file) {
  Handle fcpl = owned(H5Fget_create_plist(file), "read file creation list");
  hsize_t size = 0;
  check(H5Pget_userblock(fcpl.get(), &size), "read user block size");
  return size == kUserBlock;
}

// Bounds every size a reader takes from the file: no dataset or string of a file holds more
// elements than the file has bytes, so a damaged size is refused before any buffer is sized
// by it. Set for the duration of one read (RunReadScope).
thread_local hsize_t t_file_bytes = std::numeric_limits<hsize_t>::max();

void check_size(hsize_t n, const std::string& what) {
  if (n > t_file_bytes)
    invalid(fmt::format("{} claims {} elements, more than the file's {} bytes: damaged", what, n, t_file_bytes));
}

class RunReadScope {
 public:
  explicit RunReadScope(const std::string& path) : previous_(t_file_bytes) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (!ec) t_file_bytes = static_cast<hsize_t>(size);
  }
  ~RunReadScope() { t_file_bytes = previous_; }
  RunReadScope(const RunReadScope&) = delete;
  RunReadScope& operator=(const RunReadScope&) = delete;

 private:
  hsize_t previous_;
};

Handle open_file(const std::string& path, unsigned flags) {
  Handle fapl = file_access_plist();
  return owned(H5Fopen(path.c_str(), flags, fapl.get()), "open " + path);
}

void close_file(Handle& file) { check(H5Fclose(file.release()), "close (flush) the file"); }

bool link_exists(hid_t loc, const std::string& path) {
  return check_tri(H5Lexists(loc, path.c_str(), H5P_DEFAULT), "look up " + path);
}

Handle open_group(hid_t loc, const std::string& name) {
  return owned(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), "open group " + name);
}

// Groups remember the order links were made in, so weights read back in state_dict order.
Handle create_group(hid_t loc, const std::string& name) {
  Handle gcpl = owned(H5Pcreate(H5P_GROUP_CREATE), "create group property list");
  check(H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
        "track link order");
  return owned(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT),
                      "create group " + name);
}

Handle open_dataset(hid_t loc, const std::string& name) {
  return owned(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), "open dataset " + name);
}

void delete_link(hid_t loc, const std::string& name) {
  check(H5Ldelete(loc, name.c_str(), H5P_DEFAULT), "delete " + name);
}

// Names of a group's links, in creation order where tracked, else by name.
std::vector<std::string> link_names(hid_t group) {
  H5G_info_t info;
  check(H5Gget_info(group, &info), "list group");
  Handle gcpl = owned(H5Gget_create_plist(group), "read group properties");
  unsigned order_flags = 0;
  check(H5Pget_link_creation_order(gcpl.get(), &order_flags), "read link order");
  const H5_index_t index = (order_flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t size = H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (size < 0) fail("read link name");
    std::string name(static_cast<std::size_t>(size) + 1, '\0');
    if (H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT) < 0)
      fail("read link name");
    name.resize(static_cast<std::size_t>(size));
    names.push_back(std::move(name));
  }
  return names;
}

// ---- scalar strings (attributes and the /config dataset) -----------------------------

// Reads a scalar string value of file type `ftype` through `read(memtype, buffer)`;
// accepts variable- and fixed-length strings so files written by other tools read too.
template <typename ReadFn>
std::string read_scalar_string(hid_t ftype, const std::string& what, ReadFn read) {
  if (H5Tget_class(ftype) != H5T_STRING) invalid(what + " is not a string");
  if (check_tri(H5Tis_variable_str(ftype), what)) {
    Handle memtype = utf8_string_type();
    char* text = nullptr;
    check(read(memtype.get(), &text), "read " + what);
    std::string value = text ? text : "";
    Handle space = scalar_space();
    H5Dvlen_reclaim(memtype.get(), space.get(), H5P_DEFAULT, &text);
    return value;
  }
  std::size_t size = H5Tget_size(ftype);
  check_size(size, what);
  Handle memtype = owned(H5Tcopy(ftype), "copy string type");
  std::string value(size, '\0');
  check(read(memtype.get(), value.data()), "read " + what);
  value.resize(std::strlen(value.c_str()));
  return value;
}

void write_attr(hid_t obj, const std::string& name, hid_t type, const void* value) {
  if (check_tri(H5Aexists(obj, name.c_str()), "look up attribute " + name))
    check(H5Adelete(obj, name.c_str()), "replace attribute " + name);
  Handle space = scalar_space();
  Handle attr = owned(H5Acreate2(obj, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                            "create attribute " + name);
  check(H5Awrite(attr.get(), type, value), "write attribute " + name);
}

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type = utf8_string_type();
  const char* text = value.c_str();
  write_attr(obj, name, type.get(), &text);
}

void write_attr(hid_t obj, const std::string& name, std::int64_t value) {
  write_attr(obj, name, H5T_NATIVE_INT64, &value);
}

void write_attr(hid_t obj, const std::string& name, double value) {
  write_attr(obj, name, H5T_NATIVE_DOUBLE, &value);
}

bool has_attr(hid_t obj, const std::string& name) {
  return check_tri(H5Aexists(obj, name.c_str()), "look up attribute " + name);
}

Handle open_attr(hid_t obj, const std::string& name) {
  if (!has_attr(obj, name)) invalid("missing attribute '" + name + "'");
  return owned(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name);
}

std::string read_attr_string(hid_t obj, const std::string& name) {
  Handle attr = open_attr(obj, name);
  Handle ftype = owned(H5Aget_type(attr.get()), "read type of attribute " + name);
  return read_scalar_string(ftype.get(), "attribute '" + name + "'",
                            [&](hid_t memtype, void* buf) { return H5Aread(attr.get(), memtype, buf); });
}

template <typename T>
T read_attr_number(hid_t obj, const std::string& name, hid_t memtype, bool integer_only) {
  Handle attr = open_attr(obj, name);
  Handle ftype = owned(H5Aget_type(attr.get()), "read type of attribute " + name);
  H5T_class_t cls = H5Tget_class(ftype.get());
  if (cls != H5T_INTEGER && (integer_only || cls != H5T_FLOAT))
    invalid(fmt::format("attribute '{}' is not {}", name, integer_only ? "an integer" : "a number"));
  T value{};
  check(H5Aread(attr.get(), memtype, &value), "read attribute " + name);
  return value;
}

std::int64_t read_attr_int(hid_t obj, const std::string& name) {
  return read_attr_number<std::int64_t>(obj, name, H5T_NATIVE_INT64, true);
}

double read_attr_double(hid_t obj, const std::string& name) {
  return read_attr_number<double>(obj, name, H5T_NATIVE_DOUBLE, false);
}

void write_string_dataset(hid_t loc, const std::string& name, const std::string& value) {
  Handle type = utf8_string_type();
  Handle space = scalar_space();
  Handle dset = owned(
      H5Dcreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      "create dataset " + name);
  const char* text = value.c_str();
  check(H5Dwrite(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &text), "write dataset " + name);
}

std::string read_string_dataset(hid_t loc, const std::string& name) {
  Handle dset = open_dataset(loc, name);
  Handle ftype = owned(H5Dget_type(dset.get()), "read type of " + name);
  return read_scalar_string(ftype.get(), "dataset '" + name + "'", [&](hid_t memtype, void* buf) {
    return H5Dread(dset.get(), memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  });
}

// ---- 1-D string lists (splits) --------------------------------------------------------

void write_string_list(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
  Handle type = utf8_string_type();
  Handle space = simple_space({values.size()});
  Handle dset = owned(
      H5Dcreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      "create dataset " + name);
  if (values.empty()) return;
  std::vector<const char*> pointers;
  for (const std::string& v : values) pointers.push_back(v.c_str());
  check(H5Dwrite(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()),
        "write dataset " + name);
}

hsize_t element_count(hid_t dset, const std::string& name) {
  Handle space = owned(H5Dget_space(dset), "read shape of " + name);
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) fail("read shape of " + name);
  check_size(static_cast<hsize_t>(n), "'" + name + "'");
  return static_cast<hsize_t>(n);
}

std::vector<std::string> read_string_list(hid_t loc, const std::string& name) {
  Handle dset = open_dataset(loc, name);
  Handle ftype = owned(H5Dget_type(dset.get()), "read type of " + name);
  if (H5Tget_class(ftype.get()) != H5T_STRING || !check_tri(H5Tis_variable_str(ftype.get()), name))
    invalid("dataset '" + name + "' is not a list of variable-length strings");
  const hsize_t n = element_count(dset.get(), name);
  if (n == 0) return {};
  Handle memtype = utf8_string_type();
  std::vector<char*> pointers(n, nullptr);
  check(H5Dread(dset.get(), memtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), "read " + name);
  std::vector<std::string> values;
  for (char* p : pointers) values.emplace_back(p ? p : "");
  Handle space = simple_space({n});
  H5Dvlen_reclaim(memtype.get(), space.get(), H5P_DEFAULT, pointers.data());
  return values;
}

// ---- tables: extendible 1-D compound datasets with 8-byte fields ---------------------

enum class ColType { Str, F64, I64 };
struct Column {
  std::string name;
  ColType type;
};
using Cell = std::variant<std::string, double, std::int64_t>;
using Row = std::vector<Cell>;

// Fields sit at 8-byte offsets; the same layout serves memory and file.
Handle table_type(const std::vector<Column>& columns) {
  Handle type = owned(H5Tcreate(H5T_COMPOUND, 8 * columns.size()), "create table type");
  Handle str = utf8_string_type();
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const Column& c = columns[i];
    hid_t member = c.type == ColType::Str ? str.get() : c.type == ColType::F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
    check(H5Tinsert(type.get(), c.name.c_str(), 8 * i, member), "add column " + c.name);
  }
  return type;
}

Handle create_table(hid_t loc, const std::string& name, const std::vector<Column>& columns) {
  Handle type = table_type(columns);
  std::vector<hsize_t> maxdims{H5S_UNLIMITED};
  Handle space = simple_space({0}, &maxdims);
  Handle dcpl = owned(H5Pcreate(H5P_DATASET_CREATE), "create dataset property list");
  check(H5Pset_chunk(dcpl.get(), 1, &kTableChunkRows), "set chunk size");
  return owned(
      H5Dcreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
      "create table " + name);
}

std::vector<unsigned char> pack_rows(const std::vector<Column>& columns, const std::vector<Row>& rows) {
  std::vector<unsigned char> buffer(8 * columns.size() * rows.size());
  unsigned char* out = buffer.data();
  for (const Row& row : rows) {
    if (row.size() != columns.size()) invalid("table row has the wrong number of fields");
    for (std::size_t i = 0; i < columns.size(); ++i, out += 8) {
      if (columns[i].type == ColType::Str) {
        const char* text = std::get<std::string>(row[i]).c_str();  // rows outlive the write
        std::memcpy(out, &text, 8);
      } else if (columns[i].type == ColType::F64) {
        std::memcpy(out, &std::get<double>(row[i]), 8);
      } else {
        std::memcpy(out, &std::get<std::int64_t>(row[i]), 8);
      }
    }
  }
  return buffer;
}

void append_rows(hid_t dset, const std::string& name, const std::vector<Column>& columns,
                 const std::vector<Row>& rows) {
  if (rows.empty()) return;
  const hsize_t old_size = element_count(dset, name);
  const hsize_t count = rows.size();
  const hsize_t new_size = old_size + count;
  check(H5Dset_extent(dset, &new_size), "extend " + name);
  Handle file_space = owned(H5Dget_space(dset), "read shape of " + name);
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &old_size, nullptr, &count, nullptr),
        "select rows of " + name);
  Handle mem_space = simple_space({count});
  Handle type = table_type(columns);
  std::vector<unsigned char> buffer = pack_rows(columns, rows);
  check(H5Dwrite(dset, type.get(), mem_space.get(), file_space.get(), H5P_DEFAULT, buffer.data()),
        "append to " + name);
}

std::vector<Column> table_columns(hid_t dset, const std::string& name) {
  Handle ftype = owned(H5Dget_type(dset), "read type of " + name);
  if (H5Tget_class(ftype.get()) != H5T_COMPOUND) invalid("dataset '" + name + "' is not a table");
  int n = H5Tget_nmembers(ftype.get());
  if (n < 0) fail("read columns of " + name);
  std::vector<Column> columns;
  for (int i = 0; i < n; ++i) {
    char* member_name = H5Tget_member_name(ftype.get(), static_cast<unsigned>(i));
    if (!member_name) fail("read column name of " + name);
    std::string column_name = member_name;
    H5free_memory(member_name);
    H5T_class_t cls = H5Tget_member_class(ftype.get(), static_cast<unsigned>(i));
    if (cls == H5T_STRING) columns.push_back({column_name, ColType::Str});
    else if (cls == H5T_FLOAT) columns.push_back({column_name, ColType::F64});
    else if (cls == H5T_INTEGER) columns.push_back({column_name, ColType::I64});
    else invalid(fmt::format("column '{}' of '{}' has an unsupported type", column_name, name));
  }
  return columns;
}

struct Table {
  std::vector<Column> columns;
  std::vector<Row> rows;
  int column(const std::string& name) const {
    for (std::size_t i = 0; i < columns.size(); ++i)
      if (columns[i].name == name) return static_cast<int>(i);
    return -1;
  }
};

Row unpack_row(const std::vector<Column>& columns, const unsigned char* in) {
  Row row;
  for (const Column& c : columns) {
    if (c.type == ColType::Str) {
      const char* text = nullptr;
      std::memcpy(&text, in, 8);
      row.emplace_back(std::string(text ? text : ""));
    } else if (c.type == ColType::F64) {
      double v;
      std::memcpy(&v, in, 8);
      row.emplace_back(v);
    } else {
      std::int64_t v;
      std::memcpy(&v, in, 8);
      row.emplace_back(v);
    }
    in += 8;
  }
  return row;
}

Table read_table(hid_t loc, const std::string& name) {
  Handle dset = open_dataset(loc, name);
  Table table{table_columns(dset.get(), name), {}};
  const hsize_t n = element_count(dset.get(), name);
  if (n == 0) return table;
  Handle type = table_type(table.columns);
  const std::size_t row_bytes = 8 * table.columns.size();
  std::vector<unsigned char> buffer(row_bytes * n);
  check(H5Dread(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()), "read " + name);
  for (hsize_t r = 0; r < n; ++r) table.rows.push_back(unpack_row(table.columns, buffer.data() + r * row_bytes));
  Handle space = simple_space({n});
  H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, buffer.data());
  return table;
}

// Small tables (summary, test) are rewritten whole.
void replace_table(hid_t loc, const std::string& name, const std::vector<Column>& columns,
                   const std::vector<Row>& rows) {
  if (link_exists(loc, name)) delete_link(loc, name);
  Handle dset = create_table(loc, name, columns);
  append_rows(dset.get(), name, columns, rows);
}

const std::string& cell_str(const Table& t, const Row& row, const char* column) {
  int i = t.column(column);
  if (i < 0 || t.columns[i].type != ColType::Str) invalid(fmt::format("table lacks string column '{}'", column));
  return std::get<std::string>(row[i]);
}

double cell_f64(const Table& t, const Row& row, const char* column) {
  int i = t.column(column);
  if (i < 0 || t.columns[i].type != ColType::F64) invalid(fmt::format("table lacks float column '{}'", column));
  return std::get<double>(row[i]);
}

std::int64_t cell_i64(const Table& t, const Row& row, const char* column) {
  int i = t.column(column);
  if (i < 0 || t.columns[i].type != ColType::I64) invalid(fmt::format("table lacks integer column '{}'", column));
  return std::get<std::int64_t>(row[i]);
}

// ---- the run layout -------------------------------------------------------------------

const std::vector<Column> kPluginColumns = {{"name", ColType::Str},    {"kind", ColType::Str},
                                            {"version", ColType::Str}, {"file", ColType::Str},
                                            {"hash", ColType::Str}};
const std::vector<Column> kSummaryColumns = {
    {"metric", ColType::Str}, {"mean", ColType::F64}, {"std", ColType::F64}, {"n_folds", ColType::I64}};
const std::vector<Column> kSkippedColumns = {{"id", ColType::Str}, {"file", ColType::Str}, {"reason", ColType::Str}};
const std::vector<Column> kTestColumns = {{"metric", ColType::Str}, {"value", ColType::F64}};

std::string fold_path(int k) { return fmt::format("folds/{}", k); }

std::vector<Column> history_columns(const std::vector<std::string>& metric_names) {
  std::vector<Column> columns{{kHistoryFixed[0], ColType::I64}};
  for (int i = 1; i < 5; ++i) columns.push_back({kHistoryFixed[i], ColType::F64});
  for (const std::string& m : metric_names) columns.push_back({m, ColType::F64});
  return columns;
}

Row history_to_row(const HistoryRow& h) {
  Row row{h.epoch, h.lr, h.train_loss, h.val_loss, h.seconds};
  for (double m : h.metrics) row.emplace_back(m);
  return row;
}

// Per-image values: a table with an `id` column and one float column per metric, and an
// `epoch` attribute (-1 for the test part).
constexpr const char* kPerImageId = "id";

void check_per_image(const PerImageScores& scores) {
  if (scores.values.size() != scores.metrics.size())
    invalid(fmt::format("per-image values: {} columns for {} metrics", scores.values.size(), scores.metrics.size()));
  std::set<std::string> seen{kPerImageId};
  for (std::size_t m = 0; m < scores.metrics.size(); ++m) {
    if (scores.metrics[m].empty()) invalid("per-image values: a metric name is empty");
    if (!seen.insert(scores.metrics[m]).second)
      invalid(fmt::format("per-image values: metric name '{}' repeats or is 'id'", scores.metrics[m]));
    if (scores.values[m].size() != scores.ids.size())
      invalid(fmt::format("per-image values: '{}' has {} values for {} images", scores.metrics[m],
                          scores.values[m].size(), scores.ids.size()));
  }
}

void write_per_image(hid_t loc, const std::string& name, std::int64_t epoch, const PerImageScores& scores) {
  check_per_image(scores);
  if (link_exists(loc, name)) delete_link(loc, name);
  if (scores.empty()) return;
  std::vector<Column> columns{{kPerImageId, ColType::Str}};
  for (const std::string& m : scores.metrics) columns.push_back({m, ColType::F64});
  std::vector<Row> rows;
  rows.reserve(scores.ids.size());
  for (std::size_t i = 0; i < scores.ids.size(); ++i) {
    Row row{scores.ids[i]};
    for (const auto& column : scores.values) row.emplace_back(column[i]);
    rows.push_back(std::move(row));
  }
  replace_table(loc, name, columns, rows);
  Handle dset = open_dataset(loc, name);
  write_attr(dset.get(), "epoch", epoch);
}

// Absent: empty scores and epoch -1. Columns other than `id` must be floats.
PerImageScores read_per_image(hid_t loc, const std::string& name, std::int64_t* epoch) {
  PerImageScores scores;
  if (epoch) *epoch = -1;
  if (!link_exists(loc, name)) return scores;
  Table t = read_table(loc, name);
  const int id = t.column(kPerImageId);
  if (id < 0 || t.columns[id].type != ColType::Str) invalid(fmt::format("'{}' lacks its string column 'id'", name));
  std::vector<int> picked;
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    if (static_cast<int>(c) == id) continue;
    if (t.columns[c].type != ColType::F64)
      invalid(fmt::format("'{}' column '{}' is not a float column", name, t.columns[c].name));
    scores.metrics.push_back(t.columns[c].name);
    picked.push_back(static_cast<int>(c));
  }
  scores.values.assign(picked.size(), {});
  for (const Row& r : t.rows) {
    scores.ids.push_back(std::get<std::string>(r[id]));
    for (std::size_t m = 0; m < picked.size(); ++m) scores.values[m].push_back(std::get<double>(r[picked[m]]));
  }
  if (epoch) {
    Handle dset = open_dataset(loc, name);
    if (has_attr(dset.get(), "epoch")) *epoch = read_attr_int(dset.get(), "epoch");
  }
  return scores;
}

void write_root(hid_t file, const RunMeta& meta) {
  write_attr(file, "chestlab_version", std::string(CHESTLAB_VERSION));
  write_attr(file, "experiment", meta.experiment);
  write_attr(file, "run_id", meta.run_id);
  write_attr(file, "config_hash", meta.config_hash);
  write_attr(file, "seed", meta.seed);
  write_attr(file, "status", std::string(to_string(RunStatus::Running)));
  write_attr(file, "created", utc_now_iso8601());
  write_attr(file, "finished", std::string());
  write_attr(file, "monitor", meta.monitor);
  write_attr(file, "monitor_mode", std::string(to_string(meta.monitor_mode)));
  if (meta.folds_per_repeat > 0) write_attr(file, "folds_per_repeat", meta.folds_per_repeat);
}

void write_environment(hid_t file, const Environment& env) {
  Handle group = create_group(file, "environment");
  write_attr(group.get(), "libtorch_version", env.libtorch_version);
  write_attr(group.get(), "device", env.device);
  write_attr(group.get(), "threads", env.threads);
  write_attr(group.get(), "world_size", env.world_size);
  write_attr(group.get(), "hostname", env.hostname);
  write_attr(group.get(), "git_commit", env.git_commit);
  write_attr(group.get(), "chestlab_version",
             env.chestlab_version.empty() ? std::string(CHESTLAB_VERSION) : env.chestlab_version);
  write_attr(group.get(), "experiment_file", env.experiment_file);
  write_attr(group.get(), "base_dir", env.base_dir);
  std::vector<Row> rows;
  for (const PluginRecord& p : env.plugins) rows.push_back({p.name, p.kind, p.version, p.file, p.hash});
  Handle table = create_table(group.get(), "plugins", kPluginColumns);
  append_rows(table.get(), "plugins", kPluginColumns, rows);
}

Environment read_environment(hid_t file) {
  Handle group = open_group(file, "environment");
  Environment env;
  env.libtorch_version = read_attr_string(group.get(), "libtorch_version");
  env.device = read_attr_string(group.get(), "device");
  env.threads = read_attr_int(group.get(), "threads");
  // Files written before distributed runs existed were all one-process runs.
  env.world_size = has_attr(group.get(), "world_size") ? read_attr_int(group.get(), "world_size") : 1;
  env.hostname = read_attr_string(group.get(), "hostname");
  env.git_commit = read_attr_string(group.get(), "git_commit");
  env.chestlab_version = read_attr_string(group.get(), "chestlab_version");
  env.experiment_file = read_attr_string(group.get(), "experiment_file");
  env.base_dir = read_attr_string(group.get(), "base_dir");
  Table plugins = read_table(group.get(), "plugins");
  for (const Row& r : plugins.rows)
    env.plugins.push_back({cell_str(plugins, r, "name"), cell_str(plugins, r, "kind"),
                           cell_str(plugins, r, "version"), cell_str(plugins, r, "file"),
                           cell_str(plugins, r, "hash")});
  return env;
}

std::vector<HistoryRow> read_history(hid_t fold, std::vector<std::string>& metric_names) {
  Table table = read_table(fold, "history");
  const std::size_t n_fixed = std::size(kHistoryFixed);
  if (table.columns.size() < n_fixed) invalid("history has fewer columns than epoch, lr, train_loss, val_loss, seconds");
  for (std::size_t i = 0; i < n_fixed; ++i)
    if (table.columns[i].name != kHistoryFixed[i])
      invalid(fmt::format("history column {} is '{}', expected '{}'", i, table.columns[i].name, kHistoryFixed[i]));
  metric_names.clear();
  for (std::size_t i = n_fixed; i < table.columns.size(); ++i) metric_names.push_back(table.columns[i].name);
  std::vector<HistoryRow> rows;
  for (const Row& r : table.rows) {
    HistoryRow h;
    h.epoch = cell_i64(table, r, "epoch");
    h.lr = cell_f64(table, r, "lr");
    h.train_loss = cell_f64(table, r, "train_loss");
    h.val_loss = cell_f64(table, r, "val_loss");
    h.seconds = cell_f64(table, r, "seconds");
    for (const std::string& m : metric_names) h.metrics.push_back(cell_f64(table, r, m.c_str()));
    rows.push_back(std::move(h));
  }
  return rows;
}

NamedArray read_weight(hid_t group, const std::string& name, LoadWeights load) {
  Handle dset = open_dataset(group, name);
  Handle space = owned(H5Dget_space(dset.get()), "read shape of " + name);
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail("read shape of " + name);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0) check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), "read shape of " + name);
  NamedArray array{name, {}, {}};
  for (hsize_t d : dims) array.shape.push_back(static_cast<std::int64_t>(d));
  if (load == LoadWeights::Yes) {
    array.values.resize(element_count(dset.get(), name));
    if (!array.values.empty())
      check(H5Dread(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, array.values.data()),
            "read weights " + name);
  }
  return array;
}

FoldInfo read_fold(hid_t file, int k, LoadWeights load) {
  Handle fold = open_group(file, fold_path(k));
  FoldInfo info;
  info.index = k;
  std::string status = read_attr_string(fold.get(), "status");
  if (!parse_fold_status(status, info.status)) invalid(fmt::format("fold {} has unknown status '{}'", k, status));
  info.best_epoch = read_attr_int(fold.get(), "best_epoch");
  info.best_value = read_attr_double(fold.get(), "best_value");
  info.error = read_attr_string(fold.get(), "error");
  info.history = read_history(fold.get(), info.metric_names);
  info.train_ids = read_string_list(fold.get(), "split/train");
  info.val_ids = read_string_list(fold.get(), "split/val");
  if (link_exists(fold.get(), "weights")) {
    Handle weights = open_group(fold.get(), "weights");
    for (const std::string& name : link_names(weights.get())) info.weights.push_back(read_weight(weights.get(), name, load));
  }
  info.per_image = read_per_image(fold.get(), "per_image", &info.per_image_epoch);
  return info;
}

bool parse_fold_index(const std::string& name, int& k) {
  if (name.empty() || name.size() > 9 || !std::all_of(name.begin(), name.end(), ::isdigit)) return false;
  k = std::stoi(name);
  return true;
}

std::vector<FoldInfo> read_folds(hid_t file, LoadWeights load) {
  std::vector<FoldInfo> folds;
  if (!link_exists(file, "folds")) return folds;
  Handle group = open_group(file, "folds");
  for (const std::string& name : link_names(group.get())) {
    int k = 0;
    if (!parse_fold_index(name, k)) invalid("/folds/" + name + " is not a fold number");
    folds.push_back(read_fold(file, k, load));
  }
  std::sort(folds.begin(), folds.end(), [](const FoldInfo& a, const FoldInfo& b) { return a.index < b.index; });
  return folds;
}

void read_root(hid_t file, RunInfo& info) {
  info.chestlab_version = read_attr_string(file, "chestlab_version");
  info.meta.experiment = read_attr_string(file, "experiment");
  info.meta.run_id = read_attr_string(file, "run_id");
  info.meta.config_hash = read_attr_string(file, "config_hash");
  info.meta.seed = read_attr_int(file, "seed");
  info.meta.monitor = read_attr_string(file, "monitor");
  std::string mode = read_attr_string(file, "monitor_mode");
  if (!parse_monitor_mode(mode, info.meta.monitor_mode)) invalid("unknown monitor_mode '" + mode + "'");
  std::string status = read_attr_string(file, "status");
  if (!parse_run_status(status, info.status)) invalid("unknown run status '" + status + "'");
  info.created = read_attr_string(file, "created");
  info.finished = read_attr_string(file, "finished");
  // Written only by repeated cross-validation; older files and single assignments have none.
  if (has_attr(file, "folds_per_repeat")) {
    info.meta.folds_per_repeat = read_attr_int(file, "folds_per_repeat");
    if (info.meta.folds_per_repeat < 2) invalid("attribute 'folds_per_repeat' is below 2");
  }
}

RunInfo read_open_run(hid_t file, const std::string& path, LoadWeights load) {
  RunInfo info;
  info.path = path;
  read_root(file, info);
  info.config_toml = read_string_dataset(file, "config");
  info.environment = read_environment(file);
  info.folds = read_folds(file, load);
  if (info.meta.folds_per_repeat > 0)
    for (FoldInfo& fold : info.folds) fold.repeat = static_cast<int>(fold.index / info.meta.folds_per_repeat);
  if (link_exists(file, "summary")) {
    Table t = read_table(file, "summary");
    for (const Row& r : t.rows)
      info.summary.push_back(
          {cell_str(t, r, "metric"), cell_f64(t, r, "mean"), cell_f64(t, r, "std"), cell_i64(t, r, "n_folds")});
  }
  if (link_exists(file, "skipped")) {
    Table t = read_table(file, "skipped");
    for (const Row& r : t.rows)
      info.skipped.push_back({cell_str(t, r, "id"), cell_str(t, r, "file"), cell_str(t, r, "reason")});
  }
  if (link_exists(file, "test")) {
    Table t = read_table(file, "test");
    for (const Row& r : t.rows) info.test.push_back({cell_str(t, r, "metric"), cell_f64(t, r, "value")});
  }
  info.test_per_image = read_per_image(file, "test_per_image", nullptr);
  return info;
}

// ---- weights --------------------------------------------------------------------------

void validate_array(const NamedArray& a) {
  if (a.name.empty() || a.name == "." || a.name.find('/') != std::string::npos)
    invalid(fmt::format("weight name '{}' is not allowed (empty, '.' or containing '/')", a.name));
  std::int64_t count = 1;
  for (std::int64_t d : a.shape) {
    if (d < 0) invalid(fmt::format("weight '{}' has a negative dimension", a.name));
    count *= d;
  }
  if (static_cast<std::int64_t>(a.values.size()) != count)
    invalid(fmt::format("weight '{}' has {} values for a shape holding {}", a.name, a.values.size(), count));
}

std::vector<hsize_t> dims_of(const NamedArray& a) { return {a.shape.begin(), a.shape.end()}; }

bool same_float_shape(hid_t dset, const NamedArray& a) {
  Handle type = owned(H5Dget_type(dset), "read type of " + a.name);
  if (H5Tget_class(type.get()) != H5T_FLOAT || H5Tget_size(type.get()) != 4) return false;
  Handle space = owned(H5Dget_space(dset), "read shape of " + a.name);
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank != static_cast<int>(a.shape.size())) return false;
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0) check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), "read shape of " + a.name);
  return dims == dims_of(a);
}

// Contiguous float32 datasets; rewritten in place when the shape is unchanged so that a new
// best epoch does not add another copy of the weights to the file.
void write_weight(hid_t group, const NamedArray& a) {
  Handle dset;
  if (link_exists(group, a.name)) {
    dset = open_dataset(group, a.name);
    if (!same_float_shape(dset.get(), a)) {
      dset = Handle();
      delete_link(group, a.name);
    }
  }
  if (dset.get() < 0) {
    Handle space = simple_space(dims_of(a));
    dset = owned(H5Dcreate2(group, a.name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                                     H5P_DEFAULT, H5P_DEFAULT),
                          "create weights " + a.name);
  }
  if (!a.values.empty())
    check(H5Dwrite(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.values.data()),
          "write weights " + a.name);
}

void write_weights(hid_t fold, const std::vector<NamedArray>& arrays) {
  std::set<std::string> names;
  for (const NamedArray& a : arrays) {
    validate_array(a);
    if (!names.insert(a.name).second) invalid("weight '" + a.name + "' is given twice");
  }
  Handle group = link_exists(fold, "weights") ? open_group(fold, "weights") : create_group(fold, "weights");
  for (const std::string& old : link_names(group.get()))
    if (!names.count(old)) delete_link(group.get(), old);
  for (const NamedArray& a : arrays) write_weight(group.get(), a);
}

// ---- files on disk --------------------------------------------------------------------

[[noreturn]] void fail_errno(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

void fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) fail_errno("open " + path + " to sync it");
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) fail_errno("fsync " + path);
}

// The new content is durable before it replaces the old, and the rename is durable on return.
void commit(const std::string& tmp, const std::string& path) {
  fsync_path(tmp, O_RDONLY);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail_errno("rename " + tmp + " to " + path);
  fs::path dir = fs::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), O_RDONLY | O_DIRECTORY);
}

// ---- the seal ---------------------------------------------------------------------------
// HDF5 1.10 trusts the file it reads: a flipped bit in a global heap or in an attribute's
// heap reference ends in a segmentation fault inside the library (found by fuzzing,
// tests/fuzz), not in an error. So chestlab seals every file it writes: the user block holds
// the CRC-32 and length of everything after it, and a reader checks both before HDF5 reads a
// byte. A damaged, truncated or otherwise changed file is then refused with a DataError.
//
//   chestlab run file seal v1\n
//   crc32 1a2b3c4d\n
//   bytes 123456\n
//   (NUL up to byte 512)

constexpr char kSealMagic[] = "chestlab run file seal v1\n";

// CRC-32 and length of the file's bytes from `from` on.
std::pair<std::uint32_t, std::uint64_t> crc_from(int fd, std::uint64_t from, const std::string& path) {
  std::vector<unsigned char> buffer(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(from + total));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno("read " + path);
    }
    if (n == 0) break;
    crc = crc32_z(crc, buffer.data(), static_cast<z_size_t>(n));
    total += static_cast<std::uint64_t>(n);
  }
  return {static_cast<std::uint32_t>(crc), total};
}

std::string seal_text(std::uint32_t crc, std::uint64_t bytes) {
  std::string text = fmt::format("{}crc32 {:08x}\nbytes {}\n", kSealMagic, crc, bytes);
  text.resize(kUserBlock, '\0');
  return text;
}

// Writes the seal of a closed file that has the user block.
void seal(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0) fail_errno("open " + path + " to seal it");
  try {
    const auto [crc, bytes] = crc_from(fd, kUserBlock, path);
    const std::string text = seal_text(crc, bytes);
    if (::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) fail_errno("seal " + path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

// Checks the seal of a run file before HDF5 opens it. Files written before the seal (an HDF5
// signature at byte 0, no user block) are read as they are.
void check_seal(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw DataError(path, fmt::format("cannot open ({})", std::strerror(errno)));
  std::string head(kUserBlock, '\0');
  const ssize_t got = ::pread(fd, head.data(), head.size(), 0);
  if (got < static_cast<ssize_t>(sizeof kSealMagic - 1) || head.compare(0, sizeof kSealMagic - 1, kSealMagic) != 0) {
    ::close(fd);
    static const std::string kHdf5Signature("\x89HDF\r\n\x1a\n", 8);
    if (got >= 8 && head.compare(0, 8, kHdf5Signature) == 0) return;  // unsealed, from an older chestlab
    if (H5Fis_hdf5(path.c_str()) > 0)
      throw DataError(path, "damaged: an HDF5 file whose user block holds no valid chestlab seal");
    return;  // not HDF5 at all: the caller says so
  }
  std::pair<std::uint32_t, std::uint64_t> actual;
  try {
    actual = crc_from(fd, kUserBlock, path);
  } catch (const std::runtime_error& e) {
    ::close(fd);
    throw DataError(path, e.what());
  }
  ::close(fd);
  unsigned crc = 0;
  unsigned long long bytes = 0;
  char end = 0;
  const std::string fields = head.substr(sizeof kSealMagic - 1);
  if (std::sscanf(fields.c_str(), "crc32 %8x\nbytes %20llu%c", &crc, &bytes, &end) != 3 || end != '\n' ||
      seal_text(crc, bytes) != head)
    throw DataError(path, "damaged: its chestlab seal (the first 512 bytes) is not readable");
  if (actual.second != bytes)
    throw DataError(path, fmt::format("damaged: {} bytes follow the seal, which says {} ({})", actual.second, bytes,
                                      actual.second < bytes ? "truncated" : "extended"));
  if (actual.first != crc)
    throw DataError(path, fmt::format("damaged: its content does not match its seal (CRC-32 {:08x}, sealed {:08x}): "
                                      "changed bits, or an edit by a program other than chestlab",
                                      actual.first, crc));
}

void remove_quietly(const std::string& path) {
  std::error_code ignored;
  fs::remove(path, ignored);
}

// A name no other transaction uses: host and pid keep writers apart should the lock not
// work (a file system without flock), the counter keeps this process's transactions apart.
std::string temporary_name(const std::string& path) {
  static std::atomic<unsigned long> counter{0};
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string safe;
  for (const char* c = host; *c; ++c)
    safe += std::isalnum(static_cast<unsigned char>(*c)) || *c == '-' || *c == '.' ? *c : '_';
  return fmt::format("{}.tmp-{}-{}-{}", path, safe.empty() ? "host" : safe, static_cast<long>(::getpid()),
                     counter++);
}

// Temporaries of killed transactions (and the fixed `.tmp` of older versions): with the lock
// held no live writer can be using them, and each is as large as the run file.
void remove_stale_temporaries(const std::string& path) {
  const fs::path p(path);
  const std::string name = p.filename().string();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(p.parent_path().empty() ? fs::path(".") : p.parent_path(), ec)) {
    const std::string other = entry.path().filename().string();
    if (other == name + ".tmp" || other.rfind(name + ".tmp-", 0) == 0) remove_quietly(entry.path().string());
  }
}

std::shared_ptr<FileLock> lock_run_file(const std::string& path) {
  auto lock = std::make_shared<FileLock>(FileLock::acquire(path + ".lock", "run file " + path));
  remove_stale_temporaries(path);
  return lock;
}

// Runs `body`; a std::runtime_error it throws is rethrown naming the run file.
template <typename Fn>
void with_path(const std::string& path, Fn body) {
  try {
    silence_errors();
    body();
  } catch (const DataError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

void require_run_file(hid_t file) {
  for (const char* attr : {"chestlab_version", "run_id"})
    if (!has_attr(file, attr)) invalid(fmt::format("not a chestlab run file (no root attribute '{}')", attr));
}

Handle open_run_for_reading(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw DataError(path, "no such file");
  silence_errors();
  check_seal(path);
  if (H5Fis_hdf5(path.c_str()) <= 0) throw DataError(path, "not an HDF5 file");
  try {
    Handle file = open_file(path, H5F_ACC_RDONLY);
    require_run_file(file.get());
    return file;
  } catch (const DataError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw DataError(path, e.what());
  }
}

}  // namespace

// ---- public API -----------------------------------------------------------------------

RunInfo read_run(const std::string& path, LoadWeights weights) {
  Handle file = open_run_for_reading(path);
  RunReadScope bounds(path);
  try {
    return read_open_run(file.get(), path, weights);
  } catch (const DataError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw DataError(path, e.what());
  } catch (const std::bad_alloc&) {
    throw DataError(path, "out of memory while reading it (a damaged size?)");
  } catch (const std::length_error& e) {
    throw DataError(path, std::string("a size in it is impossible (damaged?): ") + e.what());
  }
}

RunFile RunFile::create(const std::string& path, const RunMeta& meta, const std::string& config_toml,
                        const Environment& env) {
  std::error_code ec;
  if (fs::exists(path, ec)) throw std::runtime_error(path + ": already exists; a run file is never overwritten");
  std::shared_ptr<FileLock> lock;
  with_path(path, [&] {
    fs::path dir = fs::path(path).parent_path();
    if (!dir.empty()) fs::create_directories(dir);
  });
  lock = lock_run_file(path);
  // Again under the lock: another writer may have created it since the check above.
  if (fs::exists(path, ec)) throw std::runtime_error(path + ": already exists; a run file is never overwritten");
  const std::string tmp = temporary_name(path);
  try {
    with_path(path, [&] {
      Handle file = create_file(tmp);
      write_root(file.get(), meta);
      write_string_dataset(file.get(), "config", config_toml);
      write_environment(file.get(), env);
      create_group(file.get(), "folds");
      close_file(file);
      seal(tmp);
      commit(tmp, path);
    });
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }
  return RunFile(path, std::move(lock));
}

RunFile RunFile::open(const std::string& path) {
  open_run_for_reading(path);  // a file that is no run file is refused before anything is locked
  return RunFile(path, lock_run_file(path));
}

void RunFile::transaction(const std::function<void(RunWriter&)>& edit) {
  const std::string tmp = temporary_name(path_);
  try {
    Handle file;
    with_path(path_, [&] {
      fs::copy_file(path_, tmp, fs::copy_options::none);  // fails rather than overwrite
      file = open_file(tmp, H5F_ACC_RDWR);
    });
    RunWriter writer(file.get(), path_);
    edit(writer);  // the caller's own exceptions pass through unchanged
    with_path(path_, [&] {
      const bool sealed = has_user_block(file.get());
      close_file(file);
      if (sealed) seal(tmp);
      commit(tmp, path_);
    });
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }
}

RunInfo RunFile::read(LoadWeights weights) const { return read_run(path_, weights); }

// ---- RunWriter --------------------------------------------------------------------------

namespace {

bool fold_exists(hid_t file, int k) {
  return k >= 0 && link_exists(file, "folds") && link_exists(file, fold_path(k));
}

Handle open_fold(hid_t file, int k) {
  if (!fold_exists(file, k))
    invalid(fmt::format("fold {} does not exist; call begin_fold first", k));
  return open_group(file, fold_path(k));
}

void validate_metric_names(const std::vector<std::string>& names) {
  std::set<std::string> seen(std::begin(kHistoryFixed), std::end(kHistoryFixed));
  for (const std::string& n : names) {
    if (n.empty()) invalid("a metric name is empty");
    if (!seen.insert(n).second)
      invalid(fmt::format("metric name '{}' repeats or clashes with a history column", n));
  }
}

}  // namespace

void RunWriter::set_status(RunStatus status) {
  with_path(path_, [&] { write_attr(file_id_, "status", std::string(to_string(status))); });
}

void RunWriter::set_finished_now() {
  with_path(path_, [&] { write_attr(file_id_, "finished", utc_now_iso8601()); });
}

void RunWriter::begin_fold(int k, const std::vector<std::string>& metric_names,
                           const std::vector<std::string>& train_ids, const std::vector<std::string>& val_ids,
                           FoldStatus initial_status) {
  with_path(path_, [&] {
    if (k < 0) invalid(fmt::format("fold index {} is negative", k));
    validate_metric_names(metric_names);
    if (!link_exists(file_id_, "folds")) create_group(file_id_, "folds");
    if (link_exists(file_id_, fold_path(k)))
      invalid(fmt::format("fold {} exists already; remove_fold({}) first to restart it", k, k));
    Handle fold = create_group(file_id_, fold_path(k));
    write_attr(fold.get(), "status", std::string(to_string(initial_status)));
    write_attr(fold.get(), "best_epoch", std::int64_t{-1});
    write_attr(fold.get(), "best_value", std::numeric_limits<double>::quiet_NaN());
    write_attr(fold.get(), "error", std::string());
    create_table(fold.get(), "history", history_columns(metric_names));
    Handle split = create_group(fold.get(), "split");
    write_string_list(split.get(), "train", train_ids);
    write_string_list(split.get(), "val", val_ids);
  });
}

void RunWriter::remove_fold(int k) {
  with_path(path_, [&] {
    open_fold(file_id_, k);
    delete_link(file_id_, fold_path(k));
  });
}

void RunWriter::append_epoch(int k, const HistoryRow& row) {
  with_path(path_, [&] {
    Handle fold = open_fold(file_id_, k);
    std::vector<std::string> metric_names;
    std::vector<HistoryRow> history = read_history(fold.get(), metric_names);
    if (row.metrics.size() != metric_names.size())
      invalid(fmt::format("fold {}: epoch {} has {} metric values, the fold has {} metrics", k, row.epoch,
                          row.metrics.size(), metric_names.size()));
    if (!history.empty() && row.epoch <= history.back().epoch)
      invalid(fmt::format("fold {}: epoch {} does not follow the last recorded epoch {}", k, row.epoch,
                          history.back().epoch));
    Handle dset = open_dataset(fold.get(), "history");
    append_rows(dset.get(), "history", history_columns(metric_names), {history_to_row(row)});
  });
}

void RunWriter::set_fold_status(int k, FoldStatus status, const std::string& error) {
  with_path(path_, [&] {
    Handle fold = open_fold(file_id_, k);
    write_attr(fold.get(), "status", std::string(to_string(status)));
    write_attr(fold.get(), "error", error);
  });
}

void RunWriter::set_fold_best(int k, std::int64_t epoch, double value, const std::vector<NamedArray>& weights) {
  with_path(path_, [&] {
    Handle fold = open_fold(file_id_, k);
    std::vector<std::string> metric_names;
    std::vector<HistoryRow> history = read_history(fold.get(), metric_names);
    bool recorded = std::any_of(history.begin(), history.end(), [&](const HistoryRow& r) { return r.epoch == epoch; });
    if (!recorded)
      invalid(fmt::format("fold {}: best epoch {} has no history row; append_epoch before set_fold_best", k, epoch));
    write_attr(fold.get(), "best_epoch", epoch);
    write_attr(fold.get(), "best_value", value);
    write_weights(fold.get(), weights);
  });
}

void RunWriter::set_fold_per_image(int k, std::int64_t epoch, const PerImageScores& scores) {
  with_path(path_, [&] {
    Handle fold = open_fold(file_id_, k);
    write_per_image(fold.get(), "per_image", epoch, scores);
  });
}

void RunWriter::write_summary() {
  with_path(path_, [&] {
    std::vector<Row> rows;
    for (const SummaryRow& s : compute_summary(read_folds(file_id_, LoadWeights::No)))
      rows.push_back({s.metric, s.mean, s.std, s.n_folds});
    replace_table(file_id_, "summary", kSummaryColumns, rows);
  });
}

void RunWriter::add_skipped(const std::string& id, const std::string& file, const std::string& reason) {
  with_path(path_, [&] {
    if (link_exists(file_id_, "skipped")) {
      Table t = read_table(file_id_, "skipped");
      for (const Row& r : t.rows)
        if (cell_str(t, r, "id") == id && cell_str(t, r, "file") == file) return;
    } else {
      create_table(file_id_, "skipped", kSkippedColumns);
    }
    Handle dset = open_dataset(file_id_, "skipped");
    append_rows(dset.get(), "skipped", kSkippedColumns, {{id, file, reason}});
  });
}

void RunWriter::write_test(const std::vector<MetricValue>& values) {
  with_path(path_, [&] {
    std::vector<Row> rows;
    for (const MetricValue& v : values) rows.push_back({v.metric, v.value});
    replace_table(file_id_, "test", kTestColumns, rows);
  });
}

void RunWriter::write_test_per_image(const PerImageScores& scores) {
  with_path(path_, [&] { write_per_image(file_id_, "test_per_image", -1, scores); });
}

// ---- resume state --------------------------------------------------------------------------
// /folds/<k>/resume: attribute next_epoch, one 1-D uint8 dataset per named part. Opaque to
// readers other than chestlab (the parts are LibTorch archives). Saved every epoch, so each
// part is chunked and resized in place: rewriting it reuses its chunks instead of adding
// another copy to the file (HDF5 1.10 does not reuse space freed in an earlier session).

namespace {

constexpr hsize_t kMinBlobChunk = 4096;
constexpr hsize_t kMaxBlobChunk = hsize_t{1} << 20;

hsize_t blob_chunk(hsize_t size) {
  hsize_t chunk = kMinBlobChunk;
  while (chunk < size && chunk < kMaxBlobChunk) chunk *= 2;
  return chunk;
}

bool is_resizable_bytes(hid_t dset, const std::string& name) {
  Handle type = owned(H5Dget_type(dset), "read type of " + name);
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1) return false;
  Handle dcpl = owned(H5Dget_create_plist(dset), "read storage of " + name);
  return H5Pget_layout(dcpl.get()) == H5D_CHUNKED;
}

Handle create_bytes(hid_t group, const std::string& name, hsize_t size) {
  std::vector<hsize_t> maxdims{H5S_UNLIMITED};
  Handle space = simple_space({size}, &maxdims);
  Handle dcpl = owned(H5Pcreate(H5P_DATASET_CREATE), "create dataset property list");
  const hsize_t chunk = blob_chunk(size);
  check(H5Pset_chunk(dcpl.get(), 1, &chunk), "set chunk size");
  return owned(
      H5Dcreate2(group, name.c_str(), H5T_STD_U8LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
      "create dataset " + name);
}

void write_bytes(hid_t group, const std::string& name, const std::string& bytes) {
  const hsize_t size = bytes.size();
  Handle dset;
  if (link_exists(group, name)) {
    dset = open_dataset(group, name);
    if (!is_resizable_bytes(dset.get(), name)) {
      dset = Handle();
      delete_link(group, name);
    }
  }
  if (dset.get() < 0) dset = create_bytes(group, name, size);
  else check(H5Dset_extent(dset.get(), &size), "resize " + name);
  if (size > 0)
    check(H5Dwrite(dset.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), "write " + name);
}

std::string read_bytes(hid_t group, const std::string& name) {
  Handle dset = open_dataset(group, name);
  std::string bytes(static_cast<std::size_t>(element_count(dset.get(), name)), '\0');
  if (!bytes.empty())
    check(H5Dread(dset.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), "read " + name);
  return bytes;
}

}  // namespace

void RunWriter::set_fold_resume(int k, const ResumeBlob& blob) {
  with_path(path_, [&] {
    for (const auto& part : blob.parts)
      if (part.first.empty() || part.first == "." || part.first.find('/') != std::string::npos)
        invalid(fmt::format("resume part name '{}' is not allowed (empty, '.' or containing '/')", part.first));
    Handle fold = open_fold(file_id_, k);
    Handle group =
        link_exists(fold.get(), "resume") ? open_group(fold.get(), "resume") : create_group(fold.get(), "resume");
    write_attr(group.get(), "next_epoch", blob.next_epoch);
    for (const std::string& old : link_names(group.get()))
      if (!blob.parts.count(old)) delete_link(group.get(), old);
    for (const auto& [name, bytes] : blob.parts) write_bytes(group.get(), name, bytes);
  });
}

std::optional<ResumeBlob> read_fold_resume(const std::string& path, int k) {
  Handle file = open_run_for_reading(path);
  RunReadScope bounds(path);
  try {
    if (!fold_exists(file.get(), k) || !link_exists(file.get(), fold_path(k) + "/resume")) return std::nullopt;
    Handle group = open_group(file.get(), fold_path(k) + "/resume");
    ResumeBlob blob;
    blob.next_epoch = read_attr_int(group.get(), "next_epoch");
    for (const std::string& name : link_names(group.get())) blob.parts[name] = read_bytes(group.get(), name);
    return blob;
  } catch (const DataError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw DataError(path, e.what());
  } catch (const std::bad_alloc&) {
    throw DataError(path, "out of memory while reading it (a damaged size?)");
  } catch (const std::length_error& e) {
    throw DataError(path, std::string("a size in it is impossible (damaged?): ") + e.what());
  }
}

}  // namespace chestlab
