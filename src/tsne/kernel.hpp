#pragma once
// Internal: the heavy-tailed kernel with `dof` degrees of freedom.
#include <cmath>

namespace tokmap::tsne {

struct Kernel {
  explicit Kernel(double dof) : dof(dof), inv_dof(1.0 / dof), standard(dof == 1.0) {}
  // w = (1 + d2/dof)^-dof (the unnormalised q), wg = w * (1 + d2/dof)^-1 (the repulsion weight).
  void eval(double d2, double& w, double& wg) const {
    const double g = 1.0 / (1.0 + d2 * inv_dof);
    w = standard ? g : std::pow(g, dof);
    wg = w * g;
  }
  double dof, inv_dof;
  bool standard;
};

}  // namespace tokmap::tsne
