// SPDX-License-Identifier: MIT
// The processes one `deepseek` run is made of: MPI_COMM_WORLD when started by mpirun (and built with MPI), else this
// process alone. Every rank runs the same command; rank 0 alone prints and writes outputs (docs/SCALING.md).
#pragma once
#include <cstdio>

#include "dist/comm.h"

namespace ds::rt {

// Joins the world (initialises MPI under a launcher). Call once, first thing in main(); on ranks other than 0 it
// sends stdout and stderr to /dev/null (their errors go to error_file()). Idempotent.
void join_world();
// Where this rank reports an error: stderr, also on ranks whose other output is silenced.
FILE* error_file();
// The world joined by join_world() (one process if it was not called).
dist::Comm& world();
bool is_root();
// The communicator a model should be split over: the world when it has more than one rank, else null.
dist::Comm* model_comm();
// Threads per rank when the user gave none: the machine's cores shared by the ranks started on it.
int default_threads_per_rank();
// Leaves the world: finalises MPI. After an error on any rank, ends every rank with `code` instead (one failed rank
// must not leave the others waiting in a collective).
void leave_world();
[[noreturn]] void abort_world(int code);

}  // namespace ds::rt
