// Errors as values inside tierckpt: a Status (code + message) and a
// Result<T>. They become C error codes or C++ exceptions only at the API
// edge (runtime/lib/api_c.cpp, tierckpt.hpp), and log lines in the plugin.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "tierckpt/tierckpt.h"

namespace tck {

class [[nodiscard]] Status {
public:
    Status() = default;  // success
    Status(tierckpt_status_t code, std::string message)
        : code_(code), message_(std::move(message)) {}

    static Status ok() { return {}; }

    bool is_ok() const { return code_ == TIERCKPT_OK; }
    explicit operator bool() const { return is_ok(); }
    tierckpt_status_t code() const { return code_; }
    const std::string &message() const { return message_; }

private:
    tierckpt_status_t code_ = TIERCKPT_OK;
    std::string message_;
};

template <typename... Args>
Status error(tierckpt_status_t code, fmt::format_string<Args...> f, Args &&...args) {
    return Status(code, fmt::format(f, std::forward<Args>(args)...));
}

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit on purpose
    Result(Status status) : v_(std::move(status)) {}     // NOLINT: implicit on purpose

    bool is_ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return is_ok(); }
    const T &value() const & { return std::get<T>(v_); }
    T &value() & { return std::get<T>(v_); }
    T &&value() && { return std::get<T>(std::move(v_)); }
    const T &operator*() const & { return value(); }
    T &operator*() & { return value(); }
    const T *operator->() const { return &value(); }
    T *operator->() { return &value(); }
    // The error; only meaningful when !is_ok().
    const Status &status() const { return std::get<Status>(v_); }

private:
    std::variant<T, Status> v_;
};

}  // namespace tck
