#pragma once
// result<T>: a value or a std::error_code, for operating errors (errno, short reads,
// corrupt bytes). No exceptions on a reactor's hot path.
#include <system_error>
#include <utility>
#include <variant>

namespace sluice {

template <typename T>
class [[nodiscard]] result {
public:
    result(T value) : _v(std::move(value)) {}                       // NOLINT: implicit on purpose
    result(std::error_code ec) : _v(ec) {}                          // NOLINT
    result(std::errc e) : _v(std::make_error_code(e)) {}            // NOLINT

    bool has_value() const { return _v.index() == 0; }
    explicit operator bool() const { return has_value(); }
    T& value() & { return std::get<0>(_v); }
    const T& value() const& { return std::get<0>(_v); }
    T&& value() && { return std::get<0>(std::move(_v)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    std::error_code error() const { return has_value() ? std::error_code{} : std::get<1>(_v); }

private:
    std::variant<T, std::error_code> _v;
};

inline std::error_code errno_code(int e) { return {e, std::generic_category()}; }

}  // namespace sluice
