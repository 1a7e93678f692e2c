# The two commands a user needs:
#   make demo    installs dependencies, builds, runs the main job
#   make check   installs dependencies, builds, runs every test
JOBS ?= 2
BUILD := build/release

.PHONY: all deps build demo check bench fuzz asan clean
all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j$(JOBS)

demo: build
	@scripts/demo.sh

check: build
	@ctest --test-dir $(BUILD) -j$(JOBS) --output-on-failure --timeout 600

bench: build
	@scripts/xenstored-bench.sh

asan: deps
	@cmake --preset asan-ubsan >/dev/null
	@cmake --build --preset asan-ubsan -j$(JOBS)
	@ctest --test-dir build/asan -j$(JOBS) --output-on-failure --timeout 900

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j$(JOBS)

clean:
	rm -rf build
