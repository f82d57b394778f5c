// SPDX-License-Identifier: MIT
#include "runtime/world.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

namespace ds::rt {

namespace {
std::unique_ptr<dist::Comm>& slot() {
  static std::unique_ptr<dist::Comm> w;
  return w;
}
FILE*& err_file() {
  static FILE* f = nullptr;
  return f;
}
}  // namespace

void join_world() {
  if (slot()) return;
  slot() = dist::make_world();
  if (slot()->rank() != 0) {  // rank 0 alone prints; the others keep their stderr for errors only (error_file)
    std::fflush(stdout);
    std::fflush(stderr);
    const int err = dup(2);
    if (err >= 0) err_file() = fdopen(err, "w");
    const int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
  }
}

dist::Comm& world() {
  if (!slot()) slot() = dist::make_single();
  return *slot();
}

FILE* error_file() { return err_file() ? err_file() : stderr; }

bool is_root() { return world().rank() == 0; }

dist::Comm* model_comm() { return world().size() > 1 ? &world() : nullptr; }

int default_threads_per_rank() {
  const int cores = int(std::thread::hardware_concurrency());
  return std::max(1, (cores > 0 ? cores : 1) / dist::local_ranks());
}

void leave_world() {
  std::fflush(stdout);
  std::fflush(stderr);
  slot().reset();
}

void abort_world(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::fflush(error_file());
  if (slot() && slot()->size() > 1) slot()->abort(code);
  std::exit(code);
}

}  // namespace ds::rt
