#include "chestlab/detection/box_tensor.h"

#include <torch/torch.h>

namespace chestlab {

torch::Tensor boxes_to_tensor(const std::vector<Box>& boxes) {
  torch::Tensor t = torch::empty({static_cast<std::int64_t>(boxes.size()), 4}, torch::kFloat32);
  auto a = t.accessor<float, 2>();
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    const auto row = static_cast<std::int64_t>(i);
    a[row][0] = static_cast<float>(boxes[i].x);
    a[row][1] = static_cast<float>(boxes[i].y);
    a[row][2] = static_cast<float>(boxes[i].w);
    a[row][3] = static_cast<float>(boxes[i].h);
  }
  return t;
}

}  // namespace chestlab
