//===- Tensor.h - host tensors, dtypes and float conversions ----*- C++ -*-===//
//
// The storage types the host reference kernels read and write. A Tensor owns
// contiguous row-major bytes; kernels accumulate in f32 (or wider) whatever the
// storage dtype is. No MLIR or LLVM here: runtime/ builds with only a C++
// compiler.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_KERNELS_HOST_TENSOR_H
#define KILN_RUNTIME_KERNELS_HOST_TENSOR_H

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/support/Status.h"

namespace kiln::host {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, I8, Bool };

size_t dtypeSize(DType t);
const char *dtypeName(DType t);
/// The dtype `dtypeName` calls `name`; false when none does.
bool parseDType(const std::string &name, DType &out);
bool isFloat(DType t);

// bf16 and IEEE half as raw bits, with round-to-nearest-even conversions.
uint16_t floatToBF16(float f);
float bf16ToFloat(uint16_t h);
uint16_t floatToF16(float f);
float f16ToFloat(uint16_t h);
// Rounds a float through the storage dtype (identity for f32/f64).
float roundTo(DType t, float f);

using kiln::Status;

using Shape = std::vector<int64_t>;
int64_t numElements(const Shape &s);
std::string shapeToString(const Shape &s);

/// An owning, contiguous, row-major host tensor.
class Tensor {
public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);

  DType dtype() const { return dtype_; }
  const Shape &shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_[i]; }
  int64_t numel() const { return numElements(shape_); }
  size_t byteSize() const { return bytes_.size(); }
  void *data() { return bytes_.data(); }
  const void *data() const { return bytes_.data(); }
  template <typename T> T *as() { return reinterpret_cast<T *>(bytes_.data()); }
  template <typename T> const T *as() const {
    return reinterpret_cast<const T *>(bytes_.data());
  }

  /// Element i converted to double / stored from double (rounded to dtype).
  double get(int64_t i) const;
  void set(int64_t i, double v);
  /// Element i as an integer: exact for integer dtypes (get() rounds int64
  /// beyond 2^53, and INT64_MAX, ONNX's "to the end", through a double);
  /// floats truncate, saturating at the int64 range.
  int64_t getInt(int64_t i) const;
  /// Stores an integer exactly (integer dtypes) or converted (floats).
  void setInt(int64_t i, int64_t v);

  /// Same bytes, new shape with the same element count.
  Status reshape(const Shape &shape);

  /// All elements as f32 / written from f32 (rounded to the dtype).
  std::vector<float> toF32() const;
  void fromF32(const std::vector<float> &v);

  /// Fills with `value` (poisoning outputs before a kernel runs).
  void fill(double value);

private:
  DType dtype_ = DType::F32;
  Shape shape_;
  std::vector<std::byte> bytes_;
};

/// Checks that `t` has the given dtype class and shape; the error names `what`.
Status expectShape(const Tensor &t, const Shape &shape, const char *what);

} // namespace kiln::host

#endif
