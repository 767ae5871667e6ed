//===- Status.h - the result of a fallible runtime call ---------*- C++ -*-===//
#ifndef KILN_RUNTIME_SUPPORT_STATUS_H
#define KILN_RUNTIME_SUPPORT_STATUS_H

#include <string>
#include <utility>

namespace kiln {

/// Ok, or a message saying what was wrong. Runtime code never throws or
/// aborts on bad input; it returns one of these.
class [[nodiscard]] Status {
public:
  static Status ok() { return Status(); }
  static Status error(std::string msg) { return Status(std::move(msg)); }
  bool isOk() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string &message() const { return msg_; }
  /// The same error with `context: ` in front.
  Status withContext(const std::string &context) const {
    return failed_ ? Status(context + ": " + msg_) : *this;
  }

private:
  Status() = default;
  explicit Status(std::string m) : failed_(true), msg_(std::move(m)) {}
  bool failed_ = false;
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
