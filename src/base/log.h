// SPDX-License-Identifier: MIT
// Minimal leveled logging to stderr. Quiet by default for library users; the CLI raises the level.
#pragma once
#include <string>

#include "base/error.h"

namespace ds {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };
void set_log_level(LogLevel l);
LogLevel log_level();
void log_line(LogLevel l, const std::string& msg);

template <typename... Args>
void log_info(Args&&... a) { if (log_level() >= LogLevel::Info) log_line(LogLevel::Info, detail::concat(std::forward<Args>(a)...)); }
template <typename... Args>
void log_warn(Args&&... a) { if (log_level() >= LogLevel::Warn) log_line(LogLevel::Warn, detail::concat(std::forward<Args>(a)...)); }
template <typename... Args>
void log_debug(Args&&... a) { if (log_level() >= LogLevel::Debug) log_line(LogLevel::Debug, detail::concat(std::forward<Args>(a)...)); }

}  // namespace ds
