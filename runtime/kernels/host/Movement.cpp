//===- Movement.cpp - gather, transpose, concat, slice, broadcast ----------===//
//
// Pure data movement: bytes are copied as they are, whatever the dtype.
//
//===----------------------------------------------------------------------===//
#include "runtime/kernels/host/HostKernels.h"
#include "runtime/kernels/host/Indexing.h"

namespace kiln::host {
namespace {

const std::byte *bytesOf(const Tensor &t) { return static_cast<const std::byte *>(t.data()); }
std::byte *bytesOf(Tensor &t) { return static_cast<std::byte *>(t.data()); }

Status sameDType(const Tensor &a, const Tensor &b, const char *what) {
  if (a.dtype() != b.dtype())
    return Status::error(std::string(what) + ": dtype " + dtypeName(a.dtype()) +
                         " does not match " + dtypeName(b.dtype()));
  return Status::ok();
}

} // namespace

Status gather(const Tensor &data, const Tensor &indices, int64_t axis,
              Tensor &out) {
  if (axis < 0 || axis >= data.rank())
    return Status::error("gather axis out of range");
  KILN_RETURN_IF_ERROR(sameDType(data, out, "gather result"));
  Shape s(data.shape().begin(), data.shape().begin() + axis);
  s.insert(s.end(), indices.shape().begin(), indices.shape().end());
  s.insert(s.end(), data.shape().begin() + axis + 1, data.shape().end());
  KILN_RETURN_IF_ERROR(expectShape(out, s, "gather result"));
  int64_t outer = 1, inner = 1, len = data.dim(axis);
  for (int64_t i = 0; i < axis; ++i)
    outer *= data.dim(i);
  for (int64_t i = axis + 1; i < data.rank(); ++i)
    inner *= data.dim(i);
  size_t es = dtypeSize(data.dtype());
  int64_t nIdx = indices.numel();
  for (int64_t j = 0; j < nIdx; ++j) {
    int64_t id = indices.getInt(j);
    if (id < -len || id >= len)
      return Status::error("gather index " + std::to_string(id) +
                           " out of range [0, " + std::to_string(len) + ")");
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < nIdx; ++j) {
      int64_t id = indices.getInt(j);
      if (id < 0)
        id += len;
      std::memcpy(bytesOf(out) + ((o * nIdx + j) * inner) * es,
                  bytesOf(data) + ((o * len + id) * inner) * es, inner * es);
    }
  return Status::ok();
}

Status gatherNd(const Tensor &data, const Tensor &indices, Tensor &out) {
  KILN_RETURN_IF_ERROR(sameDType(data, out, "gather_nd result"));
  if (indices.rank() < 1)
    return Status::error("gather_nd indices must have rank >= 1");
  int64_t k = indices.shape().back();
  if (k < 1 || k > data.rank())
    return Status::error("gather_nd index tuples of length " + std::to_string(k) +
                         " do not fit data of rank " + std::to_string(data.rank()));
  Shape s(indices.shape().begin(), indices.shape().end() - 1);
  s.insert(s.end(), data.shape().begin() + k, data.shape().end());
  KILN_RETURN_IF_ERROR(expectShape(out, s, "gather_nd result"));
  std::vector<int64_t> st = detail::rowMajorStrides(data.shape());
  int64_t slice = 1;
  for (int64_t d = k; d < data.rank(); ++d)
    slice *= data.dim(d);
  size_t es = dtypeSize(data.dtype());
  int64_t tuples = k ? indices.numel() / k : 0;
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (int64_t d = 0; d < k; ++d) {
      int64_t id = indices.getInt(t * k + d);
      if (id < 0)
        id += data.dim(d);
      if (id < 0 || id >= data.dim(d))
        return Status::error("gather_nd index " + std::to_string(id) +
                             " out of range on axis " + std::to_string(d));
      off += id * st[d];
    }
    std::memcpy(bytesOf(out) + t * slice * es, bytesOf(data) + off * es, slice * es);
  }
  return Status::ok();
}

Status transpose(const Tensor &x, const std::vector<int64_t> &perm, Tensor &out) {
  if (static_cast<int64_t>(perm.size()) != x.rank())
    return Status::error("transpose permutation size does not match the rank");
  KILN_RETURN_IF_ERROR(sameDType(x, out, "transpose result"));
  Shape s(perm.size());
  std::vector<bool> seen(perm.size(), false);
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] < 0 || perm[i] >= x.rank() || seen[perm[i]])
      return Status::error("transpose permutation is not a permutation");
    seen[perm[i]] = true;
    s[i] = x.dim(perm[i]);
  }
  KILN_RETURN_IF_ERROR(expectShape(out, s, "transpose result"));
  std::vector<int64_t> inSt = detail::rowMajorStrides(x.shape());
  Shape permStrides(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    permStrides[i] = inSt[perm[i]];
  size_t es = dtypeSize(x.dtype());
  std::vector<int64_t> idx(s.size(), 0);
  int64_t off = 0;
  for (int64_t i = 0, n = out.numel(); i < n; ++i) {
    std::memcpy(bytesOf(out) + i * es, bytesOf(x) + off * es, es);
    for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) {
      if (++idx[d] < s[d]) {
        off += permStrides[d];
        break;
      }
      off -= permStrides[d] * (s[d] - 1);
      idx[d] = 0;
    }
  }
  return Status::ok();
}

Status concat(const std::vector<const Tensor *> &xs, int64_t axis, Tensor &out) {
  if (xs.empty())
    return Status::error("concat of no tensors");
  const Tensor &first = *xs.front();
  if (axis < 0 || axis >= first.rank())
    return Status::error("concat axis out of range");
  Shape s = first.shape();
  s[axis] = 0;
  for (const Tensor *t : xs) {
    KILN_RETURN_IF_ERROR(sameDType(*t, first, "concat operand"));
    Shape ts = t->shape();
    if (ts.size() != s.size())
      return Status::error("concat operands differ in rank");
    for (size_t d = 0; d < ts.size(); ++d)
      if (static_cast<int64_t>(d) != axis && ts[d] != first.dim(d))
        return Status::error("concat operands differ off the concat axis");
    s[axis] += ts[axis];
  }
  KILN_RETURN_IF_ERROR(sameDType(out, first, "concat result"));
  KILN_RETURN_IF_ERROR(expectShape(out, s, "concat result"));
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i)
    outer *= s[i];
  for (int64_t i = axis + 1; i < static_cast<int64_t>(s.size()); ++i)
    inner *= s[i];
  size_t es = dtypeSize(first.dtype());
  int64_t outRow = s[axis] * inner, at = 0;
  for (const Tensor *t : xs) {
    int64_t row = t->dim(axis) * inner;
    if (row == 0) // an empty part (e.g. an empty past) has no bytes to copy
      continue;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(bytesOf(out) + (o * outRow + at) * es,
                  bytesOf(*t) + o * row * es, row * es);
    at += row;
  }
  return Status::ok();
}

Status slice(const Tensor &x, const std::vector<int64_t> &starts,
             const std::vector<int64_t> &steps, Tensor &out) {
  if (static_cast<int64_t>(starts.size()) != x.rank() ||
      static_cast<int64_t>(steps.size()) != x.rank() || out.rank() != x.rank())
    return Status::error("slice starts/steps must cover every axis");
  KILN_RETURN_IF_ERROR(sameDType(x, out, "slice result"));
  for (int64_t d = 0; d < x.rank(); ++d) {
    if (steps[d] == 0)
      return Status::error("slice step of 0");
    if (out.dim(d) == 0)
      continue;
    int64_t last = starts[d] + (out.dim(d) - 1) * steps[d];
    if (starts[d] < 0 || starts[d] >= x.dim(d) || last < 0 || last >= x.dim(d))
      return Status::error("slice reads outside the input on axis " +
                           std::to_string(d));
  }
  std::vector<int64_t> st = detail::rowMajorStrides(x.shape());
  size_t es = dtypeSize(x.dtype());
  std::vector<int64_t> idx(x.rank(), 0);
  for (int64_t i = 0, n = out.numel(); i < n; ++i) {
    int64_t off = 0;
    for (int64_t d = 0; d < x.rank(); ++d)
      off += (starts[d] + idx[d] * steps[d]) * st[d];
    std::memcpy(bytesOf(out) + i * es, bytesOf(x) + off * es, es);
    for (int64_t d = x.rank() - 1; d >= 0; --d) {
      if (++idx[d] < out.dim(d))
        break;
      idx[d] = 0;
    }
  }
  return Status::ok();
}

Status broadcastTo(const Tensor &x, Tensor &out) {
  KILN_RETURN_IF_ERROR(sameDType(x, out, "broadcast result"));
  Shape s;
  KILN_RETURN_IF_ERROR(broadcastShapes(x.shape(), out.shape(), s));
  KILN_RETURN_IF_ERROR(expectShape(out, s, "broadcast result"));
  detail::BroadcastWalker<1> walk(out.shape(), {&x.shape()});
  size_t es = dtypeSize(x.dtype());
  for (int64_t i = 0, n = out.numel(); i < n; ++i, walk.advance())
    std::memcpy(bytesOf(out) + i * es, bytesOf(x) + walk.offset(0) * es, es);
  return Status::ok();
}

} // namespace kiln::host
