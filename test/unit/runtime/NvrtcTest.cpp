//===- NvrtcTest.cpp - compiling CUDA C++ with NVRTC, no GPU needed -------===//
#include "codegen/Nvrtc.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace kiln;

namespace {

const char *kAxpy = R"cuda(#include <cuda_bf16.h>
extern "C" __global__ void axpy(const __nv_bfloat16 *x, __nv_bfloat16 *y, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = __float2bfloat16(a * __bfloat162float(x[i]) + __bfloat162float(y[i]));
}
)cuda";

} // namespace

// The targets kiln compiles for, from this machine without a GPU: cubins
// are ELF files.
TEST(Nvrtc, CompilesForHopperAndAmpere) {
  std::string version;
  Status v = codegen::nvrtcVersion(version);
  ASSERT_TRUE(v.isOk()) << v.message();
  for (const char *arch : {"sm_90a", "sm_80"}) {
    codegen::CompiledKernel k;
    Status s = codegen::compileCuda(kAxpy, "axpy.cu", arch, {}, k);
    ASSERT_TRUE(s.isOk()) << s.message();
    ASSERT_GT(k.cubin.size(), 4u) << arch;
    EXPECT_EQ(k.cubin.substr(0, 4), "\x7f" "ELF") << arch;
    EXPECT_EQ(k.arch, arch);
  }
  // A virtual architecture gives PTX.
  codegen::CompiledKernel ptx;
  ASSERT_TRUE(codegen::compileCuda(kAxpy, "axpy.cu", "compute_90", {}, ptx).isOk());
  EXPECT_NE(ptx.ptx.find(".entry axpy"), std::string::npos);
}

// A compile error names the kernel, the target, and quotes the line.
TEST(Nvrtc, ErrorsQuoteTheOffendingLine) {
  const char *broken = "extern \"C\" __global__ void k(float *y) {\n"
                       "  y[0] = undefined_name * 2.0f;\n"
                       "}\n";
  codegen::CompiledKernel k;
  Status s = codegen::compileCuda(broken, "k.cu", "sm_90a", {}, k);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("k.cu: NVRTC failed for sm_90a"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("undefined_name"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("2 |   y[0] = undefined_name * 2.0f;"), std::string::npos)
      << s.message();
}

// NvrtcOptions::defines reach the device library (`kiln compile
// --pdl-trigger 1 --pdl-prefetch BYTES`): with them the kernel triggers its
// dependents and prefetches its weight rows into L2; without, neither.
TEST(Nvrtc, DefinesReachTheDeviceLibrary) {
  std::ifstream in(std::string(KILN_SOURCE_DIR) + "/codegen/cuda/common.cuh");
  ASSERT_TRUE(in.good());
  std::stringstream common;
  common << in.rdbuf();
  const std::string src = common.str() + R"cuda(
extern "C" __global__ void k(const __nv_bfloat16 *w, float *y, int rows) {
  kiln::prefetchWeightRows(w, 256, rows, [](int r) -> kiln::i64 { return r; }, 64, 256);
  kiln::dependOnPrevious();
  kiln::triggerDependents();
  y[threadIdx.x] = 1.0f;
}
)cuda";
  for (bool on : {false, true}) {
    codegen::NvrtcOptions o;
    if (on)
      o.defines = {"KILN_PDL_TRIGGER=1", "KILN_PDL_PREFETCH=4096"};
    codegen::CompiledKernel ptx;
    Status s = codegen::compileCuda(src, "pdl.cu", "compute_90", o, ptx);
    ASSERT_TRUE(s.isOk()) << s.message();
    EXPECT_NE(ptx.ptx.find("griddepcontrol.wait"), std::string::npos);
    EXPECT_EQ(ptx.ptx.find("griddepcontrol.launch_dependents") != std::string::npos, on) << on;
    EXPECT_EQ(ptx.ptx.find("cp.async.bulk.prefetch.L2.global") != std::string::npos, on) << on;
  }
}

// A layer's kernels repeat in every layer: identical sources compile once,
// on several threads, and every copy gets the binary.
TEST(Nvrtc, CompileAllDeduplicatesAndRunsInParallel) {
  std::vector<codegen::KernelSource> sources;
  for (int layer = 0; layer < 6; ++layer)
    for (int scale : {2, 3})
      sources.push_back({"scale" + std::to_string(scale) + "_layer" + std::to_string(layer) + ".cu",
                         "extern \"C\" __global__ void k(float *y) { y[threadIdx.x] *= " +
                             std::to_string(scale) + ".0f; }\n"});
  std::vector<std::vector<codegen::CompiledKernel>> out;
  size_t unique = 0;
  Status s = codegen::compileAll(sources, {"sm_90a", "sm_80"}, {}, 2, out, unique);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(unique, 2u);
  ASSERT_EQ(out.size(), sources.size());
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i].size(), 2u);
    EXPECT_EQ(out[i][0].arch, "sm_90a");
    EXPECT_EQ(out[i][1].arch, "sm_80");
    EXPECT_EQ(out[i][0].cubin, out[i % 2][0].cubin) << "copies share the binary";
  }
  EXPECT_NE(out[0][0].cubin, out[1][0].cubin) << "different constants, different code";
  // One broken source fails the whole set with its name.
  sources.push_back({"broken.cu", "extern \"C\" __global__ void k(float *y) { y[0] = nope; }\n"});
  s = codegen::compileAll(sources, {"sm_90a"}, {}, 2, out, unique);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("broken.cu: NVRTC failed for sm_90a"), std::string::npos) << s.message();
}
