# Thin wrapper: every target installs what is missing, configures, builds, runs.
#   make demo   train configs/mnist-ff.yaml, one pinned process per stage
#   make test   the Check suites (unit + end-to-end) through ctest
#   make fuzz   fuzz the frame decoder and topology loader (a smoke run is in make test)
#   make bench  benchmarks (never part of make test)
BUILD ?= build
MAKEFLAGS += --no-print-directory
JOBS ?= 2
DEMO_TOPOLOGY ?= configs/mnist-ff.yaml

.PHONY: all deps data build demo stream-demo test fuzz bench clean
all: build

deps:
	@bash scripts/install_deps.sh

data: deps
	@bash scripts/fetch_data.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build data
	./$(BUILD)/ffstream run $(DEMO_TOPOLOGY) --out runs/demo

# The MNIST training digits as a video, through ffmpeg, into a pipeline that
# learns them at batch 1; prints the rolling prequential accuracy and
# publishes every prediction on tcp://127.0.0.1:5600.
stream-demo: build data
	@mkdir -p runs/stream-demo
	@python3 scripts/idx_to_y4m.py data/mnist/train runs/stream-demo/digits.y4m runs/stream-demo/digits.labels
	./$(BUILD)/ffstream run configs/stream-mnist-video.yaml --out runs/stream-demo/run

# The suites on the optimized build, a short fuzz run, then the suites again
# under AddressSanitizer + UndefinedBehaviorSanitizer (the e2e runs then
# spawn sanitized stages too; the 10-minute soak runs once, optimized).
test: build data
	cd $(BUILD) && ctest --output-on-failure -j 1
	bash fuzz/run.sh 200000 5000
	@cmake -S . -B $(BUILD)-asan -DFFS_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j 1 -E check_soak

# libFuzzer + ASan/UBSan on the frame decoder and the topology loader.
fuzz: deps
	bash fuzz/run.sh 10000000 100000

bench: build data
	@bash bench/run_all.sh

clean:
	rm -rf $(BUILD) $(BUILD)-asan
