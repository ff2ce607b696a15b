# make demo: build the sample site's feeds.  make test: run the test suite.
# make bench: the benchmarks of bench/ (BENCH_FULL=1 for the issue's sizes).
# Each target creates .venv with the machine's python3 when it is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean chromium mailservers postgresql

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/publisher --config publisher.toml build
	$(BIN)/publisher --config publisher.toml digest --list daily --force
	$(BIN)/publisher --config publisher.toml subscribers import seeds/subscribers.csv
	$(BIN)/publisher --config publisher.toml send --list daily

test: $(STAMP) chromium mailservers postgresql
	$(BIN)/python -m pytest

# The benchmarks of bench/ (see bench/RESULTS.md): quick sizes by default,
# BENCH_FULL=1 for the issue's. The bench extra brings the profilers and the
# tools compared against; postfix's smtp-sink is installed when missing.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

# tests/test_email_browser.py drives Debian's chromium through Playwright
# (never `playwright install`: it downloads a browser build of its own).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update && \
	  $$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core; }

# tests/test_bounces_postfix.py and test_bounces_mailservers.py run a private
# Postfix (real DSNs) and a private Dovecot (IMAP and POP3) from Debian's
# packages, each in a temp folder on loopback ports; the packages' own
# services are never started.
mailservers:
	@{ command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ]; } && [ -x /usr/sbin/dovecot ] \
	  && [ -e /usr/lib/dovecot/imap ] && [ -e /usr/lib/dovecot/pop3 ] || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update && \
	  echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends postfix dovecot-imapd dovecot-pop3d; }

# The store-facing tests also run on PostgreSQL: the suite starts a server of
# its own from Debian's binaries (initdb, pg_ctl) in a temporary folder; no
# system service is used.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update && \
	  $$SUDO apt-get install -y --no-install-recommends postgresql; }

clean:
	rm -rf $(VENV) .pytest_cache .publisher
