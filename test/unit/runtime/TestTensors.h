//===- TestTensors.h - random tensors and tolerance checks for tests -----===//
#ifndef KILN_TEST_UNIT_RUNTIME_TESTTENSORS_H
#define KILN_TEST_UNIT_RUNTIME_TESTTENSORS_H

#include "runtime/kernels/host/Tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace kiln::test {

using host::DType;
using host::Shape;
using host::Tensor;

/// Uniform random values in [lo, hi), rounded to the dtype on store.
inline Tensor randomTensor(DType dt, Shape shape, std::mt19937_64 &rng,
                           double lo = -1.0, double hi = 1.0) {
  Tensor t(dt, std::move(shape));
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.set(i, u(rng));
  return t;
}

/// The stored values as double (what a float64 reference computes from).
inline std::vector<double> values(const Tensor &t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i)
    v[i] = t.get(i);
  return v;
}

/// Relative tolerance that fits the storage dtype of a result.
inline double toleranceFor(DType dt) {
  switch (dt) {
  case DType::BF16: return 1.6e-2;
  case DType::F16: return 2e-3;
  default: return 2e-5;
  }
}

/// |got - want| <= tol * (|want| + rms(want)) elementwise: relative for large
/// values, scaled to the data for values near zero.
inline void expectClose(const Tensor &got, const std::vector<double> &want,
                        double tol, const char *what = "") {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what;
  double ss = 0;
  for (double w : want)
    ss += w * w;
  double rms = want.empty() ? 0 : std::sqrt(ss / want.size());
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    double g = got.get(static_cast<int64_t>(i));
    if (!(std::fabs(g - want[i]) <= tol * (std::fabs(want[i]) + rms + 1e-30))) {
      if (++bad <= 5)
        ADD_FAILURE() << what << " element " << i << ": got " << g << ", want "
                      << want[i] << " (tol " << tol << ")";
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << want.size()
                    << " elements out of tolerance";
}

inline const DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

} // namespace kiln::test

#endif
