//===- TargetTest.cpp - GPU target descriptions ---------------------------===//
#include "runtime/target/Target.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace kiln;

// Every file under targets/ parses and is built in.
TEST(Target, EveryDescriptionFileIsBuiltIn) {
  size_t files = 0;
  for (const auto &e : std::filesystem::directory_iterator(KILN_SOURCE_DIR "/targets")) {
    if (e.path().extension() != ".json")
      continue;
    ++files;
    target::TargetDesc t;
    Status s = target::findTarget(e.path().string(), t);
    ASSERT_TRUE(s.isOk()) << s.message();
    target::TargetDesc b;
    ASSERT_TRUE(target::findTarget(t.name, b).isOk()) << t.name << " is not built in";
    EXPECT_EQ(b.smCount, t.smCount);
  }
  EXPECT_GE(files, 4u);
  EXPECT_EQ(target::builtinTargets().size(), files);
}

TEST(Target, NamesAliasesAndFigures) {
  target::TargetDesc h100, h200, a100, pcie;
  ASSERT_TRUE(target::findTarget("h100-80gb", h100).isOk());
  ASSERT_TRUE(target::findTarget("h200", h200).isOk());
  ASSERT_TRUE(target::findTarget("a100", a100).isOk());
  ASSERT_TRUE(target::findTarget("h100-pcie", pcie).isOk());
  EXPECT_EQ(h100.name, "h100-sxm-80gb");
  EXPECT_EQ(h100.smCount, 132);
  EXPECT_EQ(pcie.smCount, 114);
  EXPECT_EQ(a100.arch, "sm_80");
  EXPECT_GT(h200.hbmBandwidthGBps, h100.hbmBandwidthGBps);
  EXPECT_GT(h100.hbmBandwidthGBps, pcie.hbmBandwidthGBps);
  // 90% of 3.35 TB/s.
  EXPECT_NEAR(h100.streamBytesPerSecond(), 3.015e12, 1e9);
}

TEST(Target, BadDescriptionsAreClearErrors) {
  target::TargetDesc t;
  Status s = target::findTarget("h900", t);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("unknown target \"h900\" (known: a100"), std::string::npos)
      << s.message();
  s = target::parseTarget("{\"name\": \"x\"}", "x.json", t);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), "x.json: missing \"description\"");
  target::TargetDesc good;
  ASSERT_TRUE(target::findTarget("h100", good).isOk());
  std::ifstream in(KILN_SOURCE_DIR "/targets/h100-sxm-80gb.json");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::string zero = text;
  zero.replace(zero.find("\"sm_count\": 132"), 15, "\"sm_count\": 0  ");
  s = target::parseTarget(zero, "z.json", t);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), "z.json: \"sm_count\" must be a positive integer");
  std::string frac = text;
  frac.replace(frac.find("\"copy_efficiency\": 0.90"), 23, "\"copy_efficiency\": 1.50");
  s = target::parseTarget(frac, "f.json", t);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("is a fraction"), std::string::npos);
  s = target::findTarget("/nonexistent/t.json", t);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("cannot open"), std::string::npos);
}
