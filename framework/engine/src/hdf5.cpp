#include "chestlab/engine/hdf5.h"

namespace chestlab::hdf5 {

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

void Handle::reset() {
  if (id_ >= 0) {
    // An object of a file closed with H5F_CLOSE_STRONG is gone already: H5I_BADID, nothing to do.
    switch (H5Iget_type(id_)) {
      case H5I_FILE: H5Fclose(id_); break;
      case H5I_GROUP: H5Gclose(id_); break;
      case H5I_DATASET: H5Dclose(id_); break;
      case H5I_DATASPACE: H5Sclose(id_); break;
      case H5I_DATATYPE: H5Tclose(id_); break;
      case H5I_ATTR: H5Aclose(id_); break;
      case H5I_GENPROP_LST: H5Pclose(id_); break;
      default: break;
    }
  }
  id_ = -1;
}

}  // namespace chestlab::hdf5
