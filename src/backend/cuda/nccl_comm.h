// SPDX-License-Identifier: MIT
// The communicator for GPUs: NCCL collectives on device memory, one GPU per process (dist/comm.h). The ranks find
// each other through a bootstrap communicator (MPI), which also carries broadcast: control data in host memory (the
// served steps, model/step.cpp). all_gather / all_to_all / all_reduce_sum take device pointers of `device`.
#pragma once
#include <memory>

#include "dist/comm.h"

namespace ds::cuda {

// Whether this build has NCCL.
bool have_nccl();
// Joins the NCCL clique of every rank of `bootstrap` on GPU `device`. Throws ds::Error without NCCL or on failure.
std::unique_ptr<dist::Comm> make_nccl_comm(dist::Comm& bootstrap, int device);

}  // namespace ds::cuda
