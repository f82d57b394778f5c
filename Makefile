# deepseek.cpp — the two commands: `make demo` and `make test`. Both install what they need first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
CUDA_BUILD ?= build-cuda
NVCC       ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
JOBS       ?= $(shell nproc)
DEEPSEEK   := $(BUILD)/apps/deepseek/deepseek

.PHONY: all setup build build-asan build-cuda test test-release test-asan test-cuda demo clean
.PHONY: fuzz-build fuzz fuzz-smoke fuzz-merge

all: build

setup:
	bash scripts/setup.sh

build:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

build-asan:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDS_SANITIZE="address;undefined"
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# The CUDA build (-DDS_CUDA=ON, sm_90a). With a GPU (nvidia-smi lists one) every test of that build runs, the CUDA
# op and golden tests for real. Without one (CI) the CPU tests already ran in test-release, so only the CUDA tests
# (which skip visibly) and the golden tests run: this step then catches build breaks of the CUDA build.
build-cuda:
	cmake -S . -B $(CUDA_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DDS_CUDA=ON -DCMAKE_CUDA_COMPILER=$(NVCC)
	cmake --build $(CUDA_BUILD) -j $(JOBS)

test-cuda: build-cuda
	@if nvidia-smi -L >/dev/null 2>&1; then \
	  ctest --test-dir $(CUDA_BUILD) --output-on-failure -j $(JOBS); \
	else \
	  echo "test-cuda: no GPU visible: the CUDA tests (skipped visibly) and the golden tests of the CUDA build"; \
	  ctest --test-dir $(CUDA_BUILD) --output-on-failure -j $(JOBS) -R '[Cc]uda|^golden_tests[.]'; \
	fi

# Tests run two at a time on small machines: OpenMP threads sleep instead of spinning when they wait, so
# concurrent test processes do not starve each other.
export OMP_WAIT_POLICY ?= passive

# After the run, the ISA levels the op tests exercised (ops_tests.CpuIsa.* fails if the host has a level, bf16 kernels
# included, that the tests did not run).
test-release: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	@grep -ho "ops: ISA levels run: [^;]*" $(BUILD)/Testing/Temporary/LastTest.log | sort | uniq -c | sort -rn | head -3

# The sanitizer pass skips the tests labelled `slow` (timing and large-input checks that are meaningless under ASan)
# and `mpi` (runs under mpirun, whose library's allocations at exit read as leaks).
test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -LE "slow|mpi"

test: setup
	$(MAKE) test-release
	$(MAKE) test-asan

demo: setup build
	bash scripts/demo.sh $(DEEPSEEK)

# Fuzzing (docs/SECURITY.md): libFuzzer harnesses (fuzz/), built with clang into $(FUZZ_BUILD). `make fuzz` runs each
# for FUZZ_SECONDS from the checked-in corpus, keeping new inputs in $(FUZZ_OUT)/corpus; `make fuzz-smoke` is the CI
# run (20 s each). Any crash, sanitizer report, timeout or memory blow-up fails the target.
FUZZ_BUILD   ?= build-fuzz
FUZZ_OUT     ?= $(FUZZ_BUILD)/fuzz-out
FUZZ_SECONDS ?= 600

fuzz-build:
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DDS_FUZZ=ON -DDS_BUILD_TESTS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

fuzz: setup fuzz-build
	bash fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_OUT)

fuzz-smoke: fuzz-build
	bash fuzz/run.sh $(FUZZ_BUILD) 20 $(FUZZ_OUT)-smoke

# Folds the inputs a long run found into fuzz/corpus/ (minimized with -merge=1; review the size before committing).
fuzz-merge: fuzz-build
	bash fuzz/merge.sh $(FUZZ_BUILD) $(FUZZ_OUT)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(CUDA_BUILD) $(FUZZ_BUILD)
