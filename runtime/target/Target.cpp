//===- Target.cpp - GPU target descriptions -------------------------------===//
#include "runtime/target/Target.h"

#include "runtime/format/Json.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace kiln::target {

// Generated from targets/*.json (runtime/CMakeLists.txt).
extern const char *const kBuiltinTargetJson[];
extern const char *const kBuiltinTargetFiles[];
extern const int kNumBuiltinTargets;

namespace {

Status field(const format::JsonValue &doc, const char *key, std::string_view source,
             const format::JsonValue *&out, format::JsonValue::Kind kind) {
  out = doc.find(key);
  if (!out)
    return Status::error(std::string(source) + ": missing \"" + key + "\"");
  if (out->kind() != kind)
    return Status::error(std::string(source) + ": \"" + key + "\" must be a " +
                         format::JsonValue::kindName(kind) + ", got " +
                         format::JsonValue::kindName(out->kind()));
  return Status::ok();
}

} // namespace

Status parseTarget(std::string_view json, std::string_view source, TargetDesc &t) {
  format::JsonValue doc;
  if (Status s = format::parseJson(json, doc); !s)
    return Status::error(std::string(source) + ": " + s.message());
  if (!doc.isObject())
    return Status::error(std::string(source) + ": a target description is a JSON object");
  using K = format::JsonValue::Kind;
  const format::JsonValue *v;
  auto str = [&](const char *key, std::string &out) -> Status {
    KILN_RETURN_IF_ERROR(field(doc, key, source, v, K::String));
    out = v->asString();
    return Status::ok();
  };
  // Every number must be positive: a zero bandwidth or SM count would make
  // every prediction meaningless.
  auto num = [&](const char *key, double &out) -> Status {
    KILN_RETURN_IF_ERROR(field(doc, key, source, v, K::Number));
    if (!(v->asNumber() > 0))
      return Status::error(std::string(source) + ": \"" + key + "\" must be positive");
    out = v->asNumber();
    return Status::ok();
  };
  auto integer = [&](const char *key, int64_t &out) -> Status {
    KILN_RETURN_IF_ERROR(field(doc, key, source, v, K::Number));
    if (!v->isInteger() || v->asInt() <= 0)
      return Status::error(std::string(source) + ": \"" + key + "\" must be a positive integer");
    out = v->asInt();
    return Status::ok();
  };
  KILN_RETURN_IF_ERROR(str("name", t.name));
  KILN_RETURN_IF_ERROR(str("description", t.description));
  KILN_RETURN_IF_ERROR(str("arch", t.arch));
  if (t.arch.rfind("sm_", 0) != 0)
    return Status::error(std::string(source) + ": \"arch\" must look like sm_90a, got " + t.arch);
  t.aliases.clear();
  if (const format::JsonValue *a = doc.find("aliases")) {
    if (!a->isArray())
      return Status::error(std::string(source) + ": \"aliases\" must be an array of names");
    for (const format::JsonValue &n : a->asArray()) {
      if (!n.isString())
        return Status::error(std::string(source) + ": \"aliases\" must be an array of names");
      t.aliases.push_back(n.asString());
    }
  }
  KILN_RETURN_IF_ERROR(integer("sm_count", t.smCount));
  KILN_RETURN_IF_ERROR(num("boost_clock_mhz", t.boostClockMhz));
  KILN_RETURN_IF_ERROR(integer("memory_bytes", t.memoryBytes));
  KILN_RETURN_IF_ERROR(num("hbm_bandwidth_gbps", t.hbmBandwidthGBps));
  KILN_RETURN_IF_ERROR(num("copy_efficiency", t.copyEfficiency));
  if (t.copyEfficiency > 1)
    return Status::error(std::string(source) + ": \"copy_efficiency\" is a fraction, at most 1");
  KILN_RETURN_IF_ERROR(integer("l2_bytes", t.l2Bytes));
  KILN_RETURN_IF_ERROR(num("l2_bandwidth_gbps", t.l2BandwidthGBps));
  KILN_RETURN_IF_ERROR(integer("smem_per_sm_bytes", t.smemPerSmBytes));
  KILN_RETURN_IF_ERROR(integer("smem_per_block_bytes", t.smemPerBlockBytes));
  KILN_RETURN_IF_ERROR(integer("registers_per_sm", t.registersPerSm));
  KILN_RETURN_IF_ERROR(integer("max_threads_per_sm", t.maxThreadsPerSm));
  KILN_RETURN_IF_ERROR(integer("max_blocks_per_sm", t.maxBlocksPerSm));
  KILN_RETURN_IF_ERROR(num("bf16_dense_tflops", t.bf16DenseTflops));
  KILN_RETURN_IF_ERROR(num("memory_latency_ns", t.memoryLatencyNs));
  KILN_RETURN_IF_ERROR(num("launch_overhead_us", t.launchOverheadUs));
  KILN_RETURN_IF_ERROR(num("graph_launch_overhead_us", t.graphLaunchOverheadUs));
  return Status::ok();
}

const std::vector<TargetDesc> &builtinTargets() {
  static const std::vector<TargetDesc> targets = [] {
    std::vector<TargetDesc> out;
    for (int i = 0; i < kNumBuiltinTargets; ++i) {
      TargetDesc t;
      // The build checks these files (test "unit.runtime.Target.*").
      if (parseTarget(kBuiltinTargetJson[i], kBuiltinTargetFiles[i], t))
        out.push_back(std::move(t));
    }
    std::sort(out.begin(), out.end(),
              [](const TargetDesc &a, const TargetDesc &b) { return a.name < b.name; });
    return out;
  }();
  return targets;
}

Status findTarget(std::string_view nameOrPath, TargetDesc &out) {
  for (const TargetDesc &t : builtinTargets())
    if (t.name == nameOrPath ||
        std::find(t.aliases.begin(), t.aliases.end(), nameOrPath) != t.aliases.end()) {
      out = t;
      return Status::ok();
    }
  if (nameOrPath.find('/') != std::string_view::npos ||
      (nameOrPath.size() > 5 && nameOrPath.substr(nameOrPath.size() - 5) == ".json")) {
    std::ifstream in{std::string(nameOrPath)};
    if (!in)
      return Status::error(std::string(nameOrPath) + ": cannot open the target description");
    std::stringstream ss;
    ss << in.rdbuf();
    return parseTarget(ss.str(), nameOrPath, out);
  }
  std::string known;
  for (const TargetDesc &t : builtinTargets())
    known += (known.empty() ? "" : ", ") + t.name;
  return Status::error("unknown target \"" + std::string(nameOrPath) + "\" (known: " + known +
                       "; or give a path to a .json description)");
}

} // namespace kiln::target
