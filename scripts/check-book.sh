#!/usr/bin/env bash
# Builds the book (docs/book.toml, chapters in docs/src) with mdBook into target/book and checks
# the links of the README, the root pages and the book (scripts/check-book.py).
#
#   bash scripts/check-book.sh
#
# mdBook is only on crates.io: the first run installs the pinned version into target/tools
# (without its default features: no `serve`, `watch` or search index, which `mdbook build`
# does not need; a debug build, which compiles in far less time and still builds this book in
# a second), so nothing depends on what is installed elsewhere on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.5.4
TOOLS=target/tools
MDBOOK=$TOOLS/bin/mdbook

if [ "$("$MDBOOK" --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
  echo "check-book: installing mdbook $MDBOOK_VERSION into $TOOLS"
  cargo install mdbook --locked --debug --version "$MDBOOK_VERSION" --no-default-features --root "$TOOLS"
fi

"$MDBOOK" build docs
python3 -m unittest -q scripts/test_check_book.py
python3 scripts/check-book.py
