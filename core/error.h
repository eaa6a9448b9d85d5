// The one exception type of Tessel and the CHECK macros that raise it.
//
// Library code never exits the process: it throws tessel::Error, which carries the source
// location that raised it and a message. Errors a user can cause (config, data, checkpoints,
// CLI) say what was found, what was expected, where (file:line, key, rank) and a hint; only
// launch/ turns an Error into an exit status.
//
//   TESSEL_CHECK(n % k == 0) << "heads (" << n << ") must divide by kv_heads (" << k << ")";
//   TESSEL_FAIL() << "unknown dtype " << name;
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace tessel {

class Error : public std::runtime_error {
 public:
  Error(std::string message, const char* file, int line)
      : std::runtime_error(message), message_(std::move(message)), file_(file), line_(line) {}

  const std::string& message() const { return message_; }
  const char* file() const { return file_; }
  int line() const { return line_; }

 private:
  std::string message_;
  const char* file_;
  int line_;
};

namespace detail {

// Collects a message with operator<< and throws it when the full expression ends. Throwing from
// the destructor is safe here: the builder only ever lives as a temporary in a throw statement.
class ErrorBuilder {
 public:
  ErrorBuilder(const char* file, int line, const char* condition) : file_(file), line_(line) {
    if (condition != nullptr) condition_ = condition;
  }
  ErrorBuilder(const ErrorBuilder&) = delete;
  ErrorBuilder& operator=(const ErrorBuilder&) = delete;

  template <typename T>
  ErrorBuilder& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

  [[noreturn]] ~ErrorBuilder() noexcept(false) {
    std::string text = stream_.str();
    if (text.empty()) text = "check failed: " + condition_;
    throw Error(text, file_, line_);
  }

 private:
  const char* file_;
  int line_;
  std::string condition_;
  std::ostringstream stream_;
};

}  // namespace detail
}  // namespace tessel

#define TESSEL_CHECK(cond)                            \
  if (__builtin_expect(static_cast<bool>(cond), 1)) { \
  } else /* NOLINT */                                 \
    ::tessel::detail::ErrorBuilder(__FILE__, __LINE__, #cond)

#define TESSEL_FAIL() ::tessel::detail::ErrorBuilder(__FILE__, __LINE__, nullptr)
