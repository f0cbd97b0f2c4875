// HDF5 identifiers owned RAII-style, for every chestlab reader and writer of HDF5 files (run
// files, the RSNA image cache). It includes <hdf5.h>: use it only where HDF5 itself is called
// (the HDF5 include directories are not part of the engine's interface).
#pragma once

#include <hdf5.h>

namespace chestlab::hdf5 {

// HDF5 prints its error stack to stderr by default; chestlab reports errors itself. The stack
// is per thread in a thread-safe HDF5 build: call this in the thread that makes the calls.
void silence_errors();

// Owns one HDF5 identifier of any kind (file, group, dataset, dataspace, datatype, attribute,
// property list) and closes it with the matching H5?close when it goes out of scope.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.release()) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.release();
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  // Gives the identifier up, e.g. to close a file with H5Fclose and check the result.
  hid_t release() {
    const hid_t id = id_;
    id_ = -1;
    return id;
  }
  // Closes the identifier now (nothing when there is none or HDF5 closed it already).
  void reset();

 private:
  hid_t id_ = -1;
};

}  // namespace chestlab::hdf5
