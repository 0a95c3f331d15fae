# RuQi (如期). `make run` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip2
# Built-in executors copied into plugins/ (the folder the host loads).
BUILTIN_PLUGINS := shell-bridge http-post baichuan
# Where `make run` resolves script cmds such as `bash scripts/hello.sh`.
# Passed to `make run` only: tests run the binary from their own folders.
RUQI_WORKDIR ?= tests/fixtures

.PHONY: run test plugins build fmt lint bench services wasm-target clean

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

## plugins: build every plugin crate to a component; copy the built-in ones to plugins/NAME.wasm
plugins: wasm-target
	cd plugins && $(CARGO) build --release --target $(WASM_TARGET)
	@for p in $(BUILTIN_PLUGINS); do cp plugins/target/$(WASM_TARGET)/release/$${p//-/_}.wasm plugins/$$p.wasm; done
	@ls -1 plugins/*.wasm

build: plugins
	$(CARGO) build --release -p ruqi

## run: build everything and serve on 127.0.0.1:8585 with the SQLite store ruqi.db
run: build
	./target/release/ruqi serve --listen 127.0.0.1:8585 --store sqlite://ruqi.db --plugins plugins --workdir $(RUQI_WORKDIR)

## services: start MariaDB and Redis when they are not running (the MySQL and Redis tests need them)
services:
	@if ! mysqladmin -uroot -h127.0.0.1 ping >/dev/null 2>&1; then \
		mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld; \
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; \
		for i in $$(seq 1 60); do mysqladmin -uroot -h127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done; \
	fi
	@if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; \
		for i in $$(seq 1 40); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.25; done; \
	fi

fmt:
	$(CARGO) fmt --all
	cd plugins && $(CARGO) fmt --all

lint: plugins
	$(CARGO) fmt --all --check
	cd plugins && $(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd plugins && $(CARGO) clippy --target $(WASM_TARGET) --all-targets -- -D warnings

## test: everything CI runs
test: services lint
	cd plugins && $(CARGO) test --workspace
	$(CARGO) build -p ruqi
	$(CARGO) test --workspace --no-fail-fast

## bench: figures and ratios (plugin overhead, due runs per second, cluster fire lateness)
bench: services plugins
	$(CARGO) build --release -p ruqi
	$(CARGO) run --release -p ruqi-tests --bin bench

clean:
	$(CARGO) clean
	cd plugins && $(CARGO) clean
	rm -f plugins/*.wasm
