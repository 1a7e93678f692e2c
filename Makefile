# The two commands a user needs:
#   make demo    installs dependencies, builds, runs the main job
#   make check   installs dependencies, builds, runs every test
JOBS ?= 2
BUILD := build/release

.PHONY: all deps build demo check bench bench-blk fuzz asan clean
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

# The block benchmark: fio on an image against blkfront -> xpv-blkback (map and copy modes).
bench-blk: build
	@build/bin/xpv-blk-bench

asan: deps
	@cmake --preset asan-ubsan >/dev/null
	@cmake --build --preset asan-ubsan -j$(JOBS)
	@# A small quarantine: the RSS bounds of the hostile-client tests measure the daemon, not ASan.
	@ASAN_OPTIONS=$${ASAN_OPTIONS:-quarantine_size_mb=8} \
	  ctest --test-dir build/asan -j$(JOBS) --output-on-failure --timeout 900

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j$(JOBS)

clean:
	rm -rf build

# Real Xen 4.17 under QEMU (no KVM needed): xpv-xenstored as dom0's only store, Linux PV domUs.
# Root; the image is cached in $WORKDIR (default /var/tmp/xpv-realxen). tests/realxen/README.md.
.PHONY: realxen
realxen: build
	@tests/realxen/realxen --bin build/bin $(REALXEN_ARGS)
