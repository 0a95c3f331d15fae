# RuQi (如期). `make run` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip2
# Built-in executors copied into plugins/ (the folder the host loads).
BUILTIN_PLUGINS := shell-bridge http-post baichuan
# Where `make run` resolves script cmds such as `bash scripts/hello.sh`.
# Passed to `make run` only: tests run the binary from their own folders.
RUQI_WORKDIR ?= tests/fixtures
# How long `make soak` runs the soak test, in seconds (`make test` runs it for 60).
SOAK_SECS ?= 600

.PHONY: run test soak plugins polyglot install-notifier build fmt lint bench bench-quick services wasm-target pytools browser galera nginx clean

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

## plugins: build every plugin crate to a component; copy the built-in ones to plugins/NAME.wasm; build the
## Python and JavaScript plugins (polyglot)
plugins: wasm-target polyglot
	cd plugins && $(CARGO) build --release --target $(WASM_TARGET)
	@for p in $(BUILTIN_PLUGINS); do cp plugins/target/$(WASM_TARGET)/release/$${p//-/_}.wasm plugins/$$p.wasm; done
	@ls -1 plugins/*.wasm

## polyglot: the Python and JavaScript plugins: a folder plugins/NAME/ holding app.py is built with
## componentize-py, one holding plugin.js with componentize-js, to target/polyglot/wasm/NAME.wasm (with
## plugins/NAME/NAME.toml, its grants, copied beside it). Not into plugins/: the host loads every *.wasm
## there, and these are not loaded by default. The tools are pinned in plugins/template-python/requirements.txt
## (with hashes) and plugins/template-js/package-lock.json and installed under target/polyglot (PyPI and
## npm are the only network needed); each is installed again only when its pin changes.
POLYGLOT := target/polyglot
POLYGLOT_WASM := $(POLYGLOT)/wasm
COMPONENTIZE_PY := $(POLYGLOT)/venv/bin/componentize-py
COMPONENTIZE_JS := $(POLYGLOT)/js/node_modules/.bin/componentize-js
PY_STAMP := $(POLYGLOT)/venv/.installed
JS_STAMP := $(POLYGLOT)/js/node_modules/.package-lock.json
PY_PLUGINS := $(patsubst plugins/%/app.py,%,$(wildcard plugins/*/app.py))
JS_PLUGINS := $(patsubst plugins/%/plugin.js,%,$(wildcard plugins/*/plugin.js))
PY_WASM := $(PY_PLUGINS:%=$(POLYGLOT_WASM)/%.wasm)
JS_WASM := $(JS_PLUGINS:%=$(POLYGLOT_WASM)/%.wasm)

polyglot: $(PY_WASM) $(JS_WASM)

$(PY_STAMP): plugins/template-python/requirements.txt
	rm -rf $(POLYGLOT)/venv
	python3 -m venv $(POLYGLOT)/venv
	$(POLYGLOT)/venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r $<
	touch $@

$(JS_STAMP): plugins/template-js/package.json plugins/template-js/package-lock.json
	mkdir -p $(POLYGLOT)/js
	cp $^ $(POLYGLOT)/js/
	npm ci --prefix $(POLYGLOT)/js --no-audit --no-fund --loglevel=error

.SECONDEXPANSION:
$(PY_WASM): $(POLYGLOT_WASM)/%.wasm: $$(wildcard plugins/$$*/*.py) $$(wildcard plugins/$$*/$$*.toml) wit/executor.wit $(PY_STAMP)
	@mkdir -p $(@D)
	$(COMPONENTIZE_PY) -q -d wit -w plugin componentize -p plugins/$* app -o $(@D)/.$*.tmp.wasm
	@mv $(@D)/.$*.tmp.wasm $@
	@if [ -f plugins/$*/$*.toml ]; then cp plugins/$*/$*.toml $(@D)/; fi
	@ls -l $@ | awk '{print $$5, $$9}'

$(JS_WASM): $(POLYGLOT_WASM)/%.wasm: plugins/%/plugin.js $$(wildcard plugins/$$*/$$*.toml) wit/executor.wit $(JS_STAMP)
	@mkdir -p $(@D)
	$(COMPONENTIZE_JS) plugins/$*/plugin.js --wit wit --world-name plugin --out $(@D)/.$*.tmp.wasm
	@mv $(@D)/.$*.tmp.wasm $@
	@if [ -f plugins/$*/$*.toml ]; then cp plugins/$*/$*.toml $(@D)/; fi
	@ls -l $@ | awk '{print $$5, $$9}'

## install-notifier: put the chat-robot notifier (plugins/notifier/) into plugins/, where the host loads it,
## with its grants in plugins/notifier.toml (copied from plugins/notifier/notifier.toml unless present: edit
## it to name your robots)
install-notifier: $(POLYGLOT_WASM)/notifier.wasm
	cp $< plugins/notifier.wasm
	@if [ ! -f plugins/notifier.toml ]; then cp plugins/notifier/notifier.toml plugins/notifier.toml; fi
	@echo "edit plugins/notifier.toml: your robots' webhooks and secrets under [config]"

build: plugins
	$(CARGO) build --release -p ruqi

## run: build everything and serve on 127.0.0.1:8585 with the SQLite store ruqi.db
run: build install-notifier
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

## pytools: the Python tools the API fuzz test runs (openapi-spec-validator, schemathesis), pinned in
## tests/fuzz/requirements.txt, in a virtualenv under target/ (PyPI is the only network needed)
PYTOOLS := target/pytools
pytools: $(PYTOOLS)/.installed
$(PYTOOLS)/.installed: tests/fuzz/requirements.txt
	python3 -m venv $(PYTOOLS)
	$(PYTOOLS)/bin/pip install --quiet --disable-pip-version-check -r tests/fuzz/requirements.txt
	touch $@

## browser: what the dashboard's browser test (tests/tests/dashboard.rs) needs: Debian's chromium and a
## CJK font when missing, and playwright-core as pinned in tests/browser/package-lock.json (it downloads no
## browser of its own)
BROWSER_MODULES := tests/browser/node_modules/.package-lock.json
browser: $(BROWSER_MODULES)
	@if [ ! -x /usr/bin/chromium ] || ! fc-list :lang=zh family 2>/dev/null | grep -q .; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; \
	fi
$(BROWSER_MODULES): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund

## galera: what the Galera tests (tests/tests/galera.rs) need, when missing: Debian's galera-4 (the wsrep
## provider a 3-member MariaDB cluster on 127.0.0.1 loads), rsync (its state transfer) and faketime
## (libfaketime, for the clock tests)
LIBFAKETIME := /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
galera:
	@if [ ! -e /usr/lib/galera/libgalera_smm.so ] || ! command -v rsync >/dev/null || [ ! -e $(LIBFAKETIME) ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq galera-4 rsync faketime; \
	fi

## nginx: the http-post micro bench's receiver, when missing: Debian's nginx (started by the bench on a
## port of its own, never as a service)
nginx:
	@if [ ! -x /usr/sbin/nginx ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; \
	fi

## test: everything CI runs
test: services lint pytools browser galera
	cd plugins && $(CARGO) test --workspace
	$(CARGO) build -p ruqi
	$(CARGO) test --workspace --no-fail-fast
	$(MAKE) bench-quick

## soak: the soak test for SOAK_SECS (2 nodes on MariaDB, 1,000 jobs, kill -9, SIGSTOP, MariaDB and
## Redis restarts; it stops and starts the local servers), with its summary
soak: services wasm-target
	$(CARGO) build -p ruqi
	RUQI_SOAK_SECS=$(SOAK_SECS) $(CARGO) test -p ruqi-tests --test soak -- --nocapture

## bench: the benchmark harness: RuQi (a release `ruqi serve`, driven over HTTP) against APScheduler 3.x
## (a virtualenv the harness makes under target/bench/venv) on the same workloads (burst, interval,
## job_add, script burst, listing, micro; and galera: two nodes on a 3-member Galera cluster against one
## server); prints one table, writes target/bench/latest.json.
## Full run ~10-20 min; `make bench QUICK=1` runs small sizes in under 2 minutes.
bench: services plugins nginx
	$(CARGO) build --release -p ruqi
	$(CARGO) run --release -p ruqi-tests --bin bench -- $(if $(QUICK),--quick)

## bench-quick: every bench workload at a small size against the debug build, peer included (make test runs it,
## so the harness cannot rot; its figures mean nothing)
bench-quick: services plugins
	$(CARGO) build -p ruqi
	$(CARGO) run -q -p ruqi-tests --bin bench -- --quick --ruqi target/debug/ruqi

clean:
	$(CARGO) clean
	cd plugins && $(CARGO) clean
	rm -f plugins/*.wasm
