# The commands users type. CMake does the building underneath.
JOBS    ?= $(shell nproc)
BUILD   ?= build
PREFIX  ?= /usr/local
CMAKE   ?= cmake
export HEAPKIT_ROOT := $(CURDIR)

.PHONY: all test bench stress install clean debug asan ubsan tsan

all:
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)

# Debug level 3: expensive invariant checks on every operation.
debug:
	@$(CMAKE) -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug -DHK_DEBUG=3 >/dev/null
	@$(CMAKE) --build build-debug -j $(JOBS)

asan ubsan tsan:
	@$(CMAKE) -S . -B build-$@ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHK_OVERRIDE=OFF -DHK_BUILD_BENCH=OFF \
	  -DHK_SANITIZE=$(subst asan,address,$(subst ubsan,undefined,$(subst tsan,thread,$@))) >/dev/null
	@$(CMAKE) --build build-$@ -j $(JOBS)

# Every test: release build, debug-level-3 build, sanitizer builds, real programs under LD_PRELOAD.
test:
	@bash test/run.sh

# The main job: peers installed if missing, every benchmark side by side, tables and charts.
bench: all
	@bash bench/run.sh

# Longer soaks than `make test` runs.
stress: all
	@bash test/stress.sh

install: all
	@$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build build-debug build-asan build-ubsan build-tsan build-nostats
