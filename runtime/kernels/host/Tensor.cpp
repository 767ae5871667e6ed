//===- Tensor.cpp - host tensors, dtypes and float conversions ------------===//
#include "runtime/kernels/host/Tensor.h"

#include <cmath>
#include <sstream>

namespace kiln::host {

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F16:
  case DType::BF16:
    return 2;
  case DType::I8:
  case DType::Bool:
    return 1;
  }
  return 0;
}

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F32: return "f32";
  case DType::F16: return "f16";
  case DType::BF16: return "bf16";
  case DType::F64: return "f64";
  case DType::I64: return "i64";
  case DType::I32: return "i32";
  case DType::I8: return "i8";
  case DType::Bool: return "i1";
  }
  return "?";
}

bool parseDType(const std::string &name, DType &out) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64, DType::I32, DType::I8, DType::Bool})
    if (name == dtypeName(t)) {
      out = t;
      return true;
    }
  return false;
}

bool isFloat(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

uint16_t floatToBF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: keep it quiet and a NaN
    return static_cast<uint16_t>((u >> 16) | 0x40);
  uint32_t lsb = (u >> 16) & 1u;
  u += 0x7fffu + lsb; // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}

float bf16ToFloat(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t floatToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) // NaN
    return static_cast<uint16_t>(sign | 0x7e00u);
  if (absx >= 0x477ff000u) // rounds to >= 65520: overflow to infinity
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (absx < 0x38800000u) { // below the smallest normal half: subnormal or 0
    // value = absx as float; half subnormal unit is 2^-24.
    float af;
    std::memcpy(&af, &absx, 4);
    float scaled = af * 16777216.0f; // / 2^-24
    // round to nearest even
    float r = std::nearbyint(scaled);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(r));
  }
  uint32_t exp = ((absx >> 23) - 127 + 15);
  uint32_t mant = absx & 0x7fffffu;
  uint32_t half = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    ++half; // carries into the exponent correctly
  return static_cast<uint16_t>(sign | half);
}

float f16ToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    float f = std::ldexp(static_cast<float>(mant), -24);
    std::memcpy(&u, &f, 4);
    u |= sign;
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float roundTo(DType t, float f) {
  switch (t) {
  case DType::BF16: return bf16ToFloat(floatToBF16(f));
  case DType::F16: return f16ToFloat(floatToF16(f));
  default: return f;
  }
}

int64_t numElements(const Shape &s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}

std::string shapeToString(const Shape &s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i)
    os << (i ? "x" : "") << s[i];
  os << "]";
  return os.str();
}

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)),
      bytes_(static_cast<size_t>(numElements(shape_)) * dtypeSize(dtype)) {}

double Tensor::get(int64_t i) const {
  const std::byte *p = bytes_.data() + i * dtypeSize(dtype_);
  switch (dtype_) {
  case DType::F32: { float v; std::memcpy(&v, p, 4); return v; }
  case DType::F64: { double v; std::memcpy(&v, p, 8); return v; }
  case DType::F16: { uint16_t v; std::memcpy(&v, p, 2); return f16ToFloat(v); }
  case DType::BF16: { uint16_t v; std::memcpy(&v, p, 2); return bf16ToFloat(v); }
  case DType::I64: { int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
  case DType::I32: { int32_t v; std::memcpy(&v, p, 4); return v; }
  case DType::I8: { int8_t v; std::memcpy(&v, p, 1); return v; }
  case DType::Bool: return static_cast<uint8_t>(*p) ? 1.0 : 0.0;
  }
  return 0;
}

int64_t Tensor::getInt(int64_t i) const {
  const std::byte *p = bytes_.data() + i * dtypeSize(dtype_);
  switch (dtype_) {
  case DType::I64: { int64_t v; std::memcpy(&v, p, 8); return v; }
  case DType::I32: { int32_t v; std::memcpy(&v, p, 4); return v; }
  case DType::I8: { int8_t v; std::memcpy(&v, p, 1); return v; }
  case DType::Bool: return static_cast<uint8_t>(*p) ? 1 : 0;
  default: {
    double v = get(i);
    if (!(v > -9.2233720368547758e18))
      return INT64_MIN;
    if (!(v < 9.2233720368547758e18))
      return INT64_MAX;
    return static_cast<int64_t>(v);
  }
  }
}

void Tensor::setInt(int64_t i, int64_t v) {
  std::byte *p = bytes_.data() + i * dtypeSize(dtype_);
  switch (dtype_) {
  case DType::I64: std::memcpy(p, &v, 8); return;
  case DType::I32: { int32_t x = static_cast<int32_t>(v); std::memcpy(p, &x, 4); return; }
  case DType::I8: { int8_t x = static_cast<int8_t>(v); std::memcpy(p, &x, 1); return; }
  case DType::Bool: *p = static_cast<std::byte>(v != 0); return;
  default: set(i, static_cast<double>(v));
  }
}

void Tensor::set(int64_t i, double v) {
  std::byte *p = bytes_.data() + i * dtypeSize(dtype_);
  switch (dtype_) {
  case DType::F32: { float f = static_cast<float>(v); std::memcpy(p, &f, 4); return; }
  case DType::F64: std::memcpy(p, &v, 8); return;
  case DType::F16: { uint16_t h = floatToF16(static_cast<float>(v)); std::memcpy(p, &h, 2); return; }
  case DType::BF16: { uint16_t h = floatToBF16(static_cast<float>(v)); std::memcpy(p, &h, 2); return; }
  case DType::I64: { int64_t x = static_cast<int64_t>(v); std::memcpy(p, &x, 8); return; }
  case DType::I32: { int32_t x = static_cast<int32_t>(v); std::memcpy(p, &x, 4); return; }
  case DType::I8: { int8_t x = static_cast<int8_t>(v); std::memcpy(p, &x, 1); return; }
  case DType::Bool: *p = static_cast<std::byte>(v != 0.0); return;
  }
}

Status Tensor::reshape(const Shape &shape) {
  if (numElements(shape) != numel())
    return Status::error("cannot reshape " + shapeToString(shape_) + " to " +
                         shapeToString(shape));
  shape_ = shape;
  return Status::ok();
}

std::vector<float> Tensor::toF32() const {
  int64_t n = numel();
  std::vector<float> out(static_cast<size_t>(n));
  if (dtype_ == DType::F32) {
    if (n)
      std::memcpy(out.data(), bytes_.data(), n * 4);
  } else if (dtype_ == DType::BF16) {
    const uint16_t *p = as<uint16_t>();
    for (int64_t i = 0; i < n; ++i)
      out[i] = bf16ToFloat(p[i]);
  } else if (dtype_ == DType::F16) {
    const uint16_t *p = as<uint16_t>();
    for (int64_t i = 0; i < n; ++i)
      out[i] = f16ToFloat(p[i]);
  } else {
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<float>(get(i));
  }
  return out;
}

void Tensor::fromF32(const std::vector<float> &v) {
  int64_t n = numel();
  if (dtype_ == DType::F32) {
    if (n)
      std::memcpy(bytes_.data(), v.data(), n * 4);
  } else if (dtype_ == DType::BF16) {
    uint16_t *p = as<uint16_t>();
    for (int64_t i = 0; i < n; ++i)
      p[i] = floatToBF16(v[i]);
  } else if (dtype_ == DType::F16) {
    uint16_t *p = as<uint16_t>();
    for (int64_t i = 0; i < n; ++i)
      p[i] = floatToF16(v[i]);
  } else {
    for (int64_t i = 0; i < n; ++i)
      set(i, v[i]);
  }
}

void Tensor::fill(double value) {
  for (int64_t i = 0, n = numel(); i < n; ++i)
    set(i, value);
}

Status expectShape(const Tensor &t, const Shape &shape, const char *what) {
  if (t.shape() != shape)
    return Status::error(std::string(what) + " has shape " +
                         shapeToString(t.shape()) + ", expected " +
                         shapeToString(shape));
  return Status::ok();
}

} // namespace kiln::host
