# The two commands a newcomer runs:
#   make demo   install what is missing, build, and run the demo
#   make test   install what is missing, build, and run every test; ends with "N passed, N failed"
.PHONY: demo test build bootstrap bench fuzz format clean

# Relative paths in the compiler cache let a fresh clone reuse what an earlier build compiled.
export CCACHE_BASEDIR := $(CURDIR)

demo: build
	scripts/demo.sh

test: bootstrap
	scripts/run-tests.sh

build: bootstrap
	cmake --preset release >/dev/null
	cmake --build --preset release --target infernet tiny_model

bootstrap:
	scripts/bootstrap.sh

bench: bootstrap
	bench/run.sh

fuzz: bootstrap
	cmake --preset fuzz >/dev/null && cmake --build --preset fuzz
	scripts/run-fuzz.sh build/fuzz 60

format:
	git ls-files -co --exclude-standard -- 'src/*.[ch]pp' 'apps/*.[ch]pp' 'bench/*.cpp' 'fuzz/*.cpp' | xargs clang-format -i

clean:
	rm -rf build
