//===- Npy.cpp - read and write numpy .npy files --------------------------===//
#include "interp/Npy.h"

#include <fstream>
#include <sstream>

using kiln::host::DType;
using kiln::host::Shape;
using kiln::host::Status;
using kiln::host::Tensor;

namespace kiln::interp {
namespace {

bool parseDescr(const std::string &d, DType &t) {
  static const std::pair<const char *, DType> table[] = {
      {"<f4", DType::F32}, {"<f2", DType::F16}, {"<f8", DType::F64},
      {"<i8", DType::I64}, {"<i4", DType::I32}, {"|i1", DType::I8},
      {"|b1", DType::Bool}};
  for (auto &[name, dt] : table)
    if (d == name) {
      t = dt;
      return true;
    }
  return false;
}

const char *descrOf(DType t) {
  switch (t) {
  case DType::F32: case DType::BF16: return "<f4";
  case DType::F16: return "<f2";
  case DType::F64: return "<f8";
  case DType::I64: return "<i8";
  case DType::I32: return "<i4";
  case DType::I8: return "|i1";
  case DType::Bool: return "|b1";
  }
  return "?";
}

/// The value of `'key': ...` in the header dict, up to the next comma at depth 0.
std::string headerField(const std::string &h, const std::string &key) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos)
    return "";
  size_t c = h.find(':', k);
  if (c == std::string::npos)
    return "";
  size_t i = c + 1, depth = 0;
  std::string v;
  for (; i < h.size(); ++i) {
    char ch = h[i];
    if (ch == '(')
      ++depth;
    if (ch == ')')
      --depth;
    if ((ch == ',' || ch == '}') && depth == 0)
      break;
    v += ch;
  }
  size_t b = v.find_first_not_of(" '"), e = v.find_last_not_of(" '");
  return b == std::string::npos ? "" : v.substr(b, e - b + 1);
}

} // namespace

Status readNpy(const std::string &path, Tensor &out) {
  auto fail = [&](const std::string &m) { return Status::error(path + ": " + m); };
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return fail("cannot open file");
  char magic[8];
  if (!in.read(magic, 8) || std::string(magic, 6) != "\x93NUMPY")
    return fail("not a .npy file (bad magic)");
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char *>(b), 2))
      return fail("truncated header length");
    hlen = b[0] | (b[1] << 8);
  } else if (magic[6] == 2 || magic[6] == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char *>(b), 4))
      return fail("truncated header length");
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  } else {
    return fail("unsupported .npy version " + std::to_string(magic[6]));
  }
  if (hlen > (1u << 20))
    return fail("header length " + std::to_string(hlen) + " is implausible");
  std::string h(hlen, '\0');
  if (!in.read(h.data(), hlen))
    return fail("truncated header");
  DType dt;
  std::string descr = headerField(h, "descr");
  if (!parseDescr(descr, dt))
    return fail("unsupported dtype '" + descr + "'");
  if (headerField(h, "fortran_order") != "False")
    return fail("Fortran-order arrays are not supported");
  std::string shapeStr = headerField(h, "shape");
  Shape shape;
  std::stringstream ss(shapeStr.substr(shapeStr.find('(') + 1));
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_of("0123456789");
    if (b == std::string::npos)
      continue;
    long long d = std::stoll(item.substr(b));
    if (d < 0 || d > (1ll << 40))
      return fail("bad dimension in shape " + shapeStr);
    shape.push_back(d);
  }
  out = Tensor(dt, shape);
  if (!in.read(static_cast<char *>(out.data()), out.byteSize()))
    return fail("truncated data: expected " + std::to_string(out.byteSize()) +
                " bytes for shape " + host::shapeToString(shape));
  return Status::ok();
}

Status writeNpy(const std::string &path, const Tensor &t) {
  Tensor f32;
  const Tensor *src = &t;
  if (t.dtype() == DType::BF16) { // numpy has no bf16: widen exactly
    f32 = Tensor(DType::F32, t.shape());
    f32.fromF32(t.toF32());
    src = &f32;
  }
  std::string shape = "(";
  for (int64_t d : t.shape())
    shape += std::to_string(d) + ",";
  if (t.rank() > 1)
    shape.pop_back();
  shape += ")";
  std::string h = std::string("{'descr': '") + descrOf(t.dtype()) +
                  "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + h.size() + 1) % 64)
    h += ' ';
  h += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out)
    return Status::error(path + ": cannot open for writing");
  out.write("\x93NUMPY\x01\x00", 8);
  unsigned char len[2] = {static_cast<unsigned char>(h.size() & 0xff),
                          static_cast<unsigned char>(h.size() >> 8)};
  out.write(reinterpret_cast<char *>(len), 2);
  out.write(h.data(), h.size());
  out.write(static_cast<const char *>(src->data()), src->byteSize());
  if (!out)
    return Status::error(path + ": write failed");
  return Status::ok();
}

} // namespace kiln::interp
