//===- Linalg.cpp - matmul and broadcasting ---------------------------------===//
#include "runtime/kernels/host/HostKernels.h"
#include "runtime/kernels/host/Indexing.h"

namespace kiln::host {

Status broadcastShapes(const Shape &a, const Shape &b, Shape &out) {
  size_t r = std::max(a.size(), b.size());
  out.assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      return Status::error("shapes " + shapeToString(a) + " and " +
                           shapeToString(b) + " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return Status::ok();
}

Status matmul(const Tensor &a, const Tensor &b, bool transposeB, Tensor &out) {
  if (a.rank() < 1 || b.rank() < 1)
    return Status::error("matmul operands must have rank >= 1");
  // Promote rank-1 operands as numpy does, then drop the added dims at the end.
  Shape as = a.shape(), bs = b.shape();
  bool aVec = as.size() == 1, bVec = bs.size() == 1;
  if (aVec)
    as.insert(as.begin(), 1);
  if (bVec)
    bs.push_back(1);
  if (bVec && transposeB)
    std::swap(bs[bs.size() - 1], bs[bs.size() - 2]);
  int64_t M = as[as.size() - 2], K = as.back();
  int64_t Kb = transposeB ? bs.back() : bs[bs.size() - 2];
  int64_t N = transposeB ? bs[bs.size() - 2] : bs.back();
  if (K != Kb)
    return Status::error("matmul contraction mismatch: " +
                         shapeToString(a.shape()) + " x " +
                         shapeToString(b.shape()) +
                         (transposeB ? " (b transposed)" : ""));
  Shape aBatch(as.begin(), as.end() - 2), bBatch(bs.begin(), bs.end() - 2), batch;
  KILN_RETURN_IF_ERROR(broadcastShapes(aBatch, bBatch, batch));
  Shape expected = batch;
  if (!aVec)
    expected.push_back(M);
  if (!bVec)
    expected.push_back(N);
  KILN_RETURN_IF_ERROR(expectShape(out, expected, "matmul result"));

  std::vector<float> av = a.toF32(), bv = b.toF32();
  std::vector<float> ov(static_cast<size_t>(out.numel()));
  detail::BroadcastWalker<2> walk(batch, {&aBatch, &bBatch});
  int64_t batches = numElements(batch);
  // b element (k, n) lives at k*N+n, or n*K+k when transposed.
  int64_t bsK = transposeB ? 1 : N, bsN = transposeB ? K : 1;
  std::vector<float> acc(static_cast<size_t>(N));
  for (int64_t bi = 0; bi < batches; ++bi, walk.advance()) {
    const float *ap = av.data() + walk.offset(0) * M * K;
    const float *bp = bv.data() + walk.offset(1) * K * N;
    float *op = ov.data() + bi * M * N;
    for (int64_t m = 0; m < M; ++m) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t k = 0; k < K; ++k) {
        float x = ap[m * K + k];
        const float *brow = bp + k * bsK;
        for (int64_t n = 0; n < N; ++n)
          acc[n] += x * brow[n * bsN];
      }
      std::copy(acc.begin(), acc.end(), op + m * N);
    }
  }
  out.fromF32(ov);
  return Status::ok();
}

} // namespace kiln::host
