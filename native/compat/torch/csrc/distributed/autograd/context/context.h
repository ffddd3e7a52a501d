// Stand-in for the one dist-autograd header c10d/reducer.hpp includes, which
// Debian's libtorch-dev 1.13 does not ship. reducer.hpp needs only two names
// from it: the GradCallback type (for a static_assert) and ContextPtr, held in
// a std::shared_ptr whose layout does not depend on the pointee. vgg-torch never
// uses distributed autograd (RPC); this is on the include path only where the
// real header is missing (CMakeLists.txt), or after libtorch's own (binding.gyp).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};

using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
