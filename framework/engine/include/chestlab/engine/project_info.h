#pragma once

#include <string>

namespace chestlab {

// chestlab's own version, e.g. "0.1.0".
std::string chestlab_version();
// The git commit of the source tree this build came from ("<sha>" or "<sha>-dirty"), or
// "unknown" when the tree or git is not there (an installed copy, a tarball).
std::string project_git_commit();

}  // namespace chestlab
