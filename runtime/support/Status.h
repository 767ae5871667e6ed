//===- Status.h - the result of a fallible runtime call ---------*- C++ -*-===//
#ifndef KILN_RUNTIME_SUPPORT_STATUS_H
#define KILN_RUNTIME_SUPPORT_STATUS_H

#include <string>
#include <utility>

namespace kiln {

/// What kind of failure a Status is, for callers that act on it (the C
/// API's kiln_status_code has the same values).
enum class StatusCode : int {
  kOk = 0,
  kError = 1,         // bad input or arguments, a malformed file: the message says which
  kKvCacheFull = 2,   // the KV pool has no pages for it now (others may free some)
  kRequestRefused = 3, // a request that cannot run even alone (its prompt does not fit)
  kDevice = 4,        // the device failed (a driver call, a kernel launch)
};

/// Ok, or a code and a message saying what was wrong. Runtime code never
/// throws or aborts on bad input; it returns one of these.
class [[nodiscard]] Status {
public:
  static Status ok() { return Status(); }
  static Status error(std::string msg) { return Status(StatusCode::kError, std::move(msg)); }
  static Status error(StatusCode code, std::string msg) { return Status(code, std::move(msg)); }
  bool isOk() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return isOk(); }
  StatusCode code() const { return code_; }
  const std::string &message() const { return msg_; }
  /// The same error (and code) with `context: ` in front.
  Status withContext(const std::string &context) const {
    return isOk() ? *this : Status(code_, context + ": " + msg_);
  }

private:
  Status() = default;
  Status(StatusCode code, std::string m) : code_(code == StatusCode::kOk ? StatusCode::kError : code), msg_(std::move(m)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string msg_;
};

} // namespace kiln

#define KILN_RETURN_IF_ERROR(expr)                                             \
  do {                                                                         \
    ::kiln::Status kilnStatus_ = (expr);                                       \
    if (!kilnStatus_)                                                          \
      return kilnStatus_;                                                      \
  } while (0)

#endif
