// SPDX-License-Identifier: MIT
#include "base/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace ds {

namespace {
std::atomic<int> g_level{int(LogLevel::Warn)};
std::mutex g_mu;
}  // namespace

void set_log_level(LogLevel l) { g_level = int(l); }
LogLevel log_level() { return LogLevel(g_level.load()); }

void log_line(LogLevel l, const std::string& msg) {
  static const char* kTag[] = {"error", "warn", "info", "debug"};
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "[%s] %s\n", kTag[int(l)], msg.c_str());
}

}  // namespace ds
