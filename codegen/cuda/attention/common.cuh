// kiln device library: paged attention rows.
//
// The warp-per-row online softmax both attention families use.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

// ---- paged attention --------------------------------------------------------
//
// One warp per (sequence, token, query head) row and key range: lanes split
// the head dim (lane l holds dims l * PER .. l * PER + PER - 1 below D, PER =
// ceil(D / 32), so any head dim is whole), keys stream through the page
// table with an online softmax. Prefill (SPLITS = 1) writes the output; decode
// splits the keys of each row over SPLITS blocks, which leave (max, sum,
// acc) in the workspace; the last split of a row combines them.

template <class S> struct AttnRow {
  static constexpr int PER = (S::D + 31) / 32;
  float m, l, acc[PER];
  /// Whether this lane's j-th dimension exists (the last lanes of a head
  /// dim that is not a multiple of 32 hold fewer, or none).
  __device__ static __forceinline__ bool live(int lane, int j) { return lane * PER + j < S::D; }
};

template <class S>
__device__ __forceinline__ void attendRange(const Args &a, i64 b, i64 t, i64 h, i64 qpos, i64 kBegin,
                                            i64 kEnd, AttnRow<S> &row) {
  constexpr int PER = AttnRow<S>::PER;
  typedef AttnRow<S> R;
  int lane = threadIdx.x & 31;
  float q[PER];
#pragma unroll
  for (int j = 0; j < PER; ++j)
    q[j] = R::live(lane, j) ? S::q(a, b, t, h, lane * PER + j) : 0.0f;
  row.m = -kiln::inf();
  row.l = 0.0f;
#pragma unroll
  for (int j = 0; j < PER; ++j)
    row.acc[j] = 0.0f;
  const typename S::TC *cache = S::cache(a);
  const int *bt = S::blockTables(a);
  i64 kh = h / (S::H / S::HKV);
  if (S::WINDOW > 0 && kBegin < qpos - S::WINDOW + 1)
    kBegin = qpos - S::WINDOW + 1;
  for (i64 s = kBegin; s < kEnd; ++s) {
    if (S::CAUSAL && s > qpos)
      break;
    if (S::WINDOW > 0 && qpos - s >= S::WINDOW)
      continue;
    i64 ko = cacheIndex<S::PAGE, S::HKV, S::D>(a, bt, b, s, 0, kh, 0);
    i64 vo = cacheIndex<S::PAGE, S::HKV, S::D>(a, bt, b, s, 1, kh, 0);
    if (ko < 0)
      continue;
    float dot = 0.0f;
#pragma unroll
    for (int j = 0; j < PER; ++j)
      dot += R::live(lane, j) ? q[j] * ldf(cache, ko + lane * PER + j) : 0.0f;
    dot = warpSum(dot);
    float x = dot * S::SCALE;
    if constexpr (S::SOFTCAP > 0.0f)
      x = S::SOFTCAP * tanhf(x / S::SOFTCAP);
    float mNew = fmaxf(row.m, x);
    float corr = expf(row.m - mNew), p = expf(x - mNew);
    row.l = row.l * corr + p;
#pragma unroll
    for (int j = 0; j < PER; ++j)
      row.acc[j] = row.acc[j] * corr + (R::live(lane, j) ? p * ldf(cache, vo + lane * PER + j) : 0.0f);
    row.m = mNew;
  }
}

template <class S>
__device__ __forceinline__ void storeRow(const Args &a, i64 b, i64 t, i64 h, const AttnRow<S> &row) {
  constexpr int PER = AttnRow<S>::PER;
  int lane = threadIdx.x & 31;
  float inv = row.l > 0.0f ? 1.0f / row.l : 0.0f;
#pragma unroll
  for (int j = 0; j < PER; ++j)
    if (AttnRow<S>::live(lane, j))
      S::store(a, b, t, h, lane * PER + j, row.acc[j] * inv);
}

} // namespace kiln
