"""Tests of scripts/check-book.py on small trees in temporary folders.

    python3 -m unittest scripts/test_check_book.py
"""

import importlib.util
import tempfile
import unittest
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "check_book", Path(__file__).resolve().parent / "check-book.py"
)
check_book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_book)

SUMMARY = "# Summary\n\n- [Guide](guide.md)\n"


class CheckBook(unittest.TestCase):
    def tree(self, files: dict[str, str]) -> Path:
        """A repository root holding `files` (path: text) and a book.toml."""
        root = Path(self.enterContext(tempfile.TemporaryDirectory()))
        files = {"docs/book.toml": '[book]\nsrc = "src"\n', **files}
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return root

    def test_good_links_and_anchors_pass(self):
        root = self.tree(
            {
                "README.md": "# Tool\n\nSee [the guide](docs/src/guide.md#set-up-in-5-steps).\n",
                "docs/src/SUMMARY.md": SUMMARY,
                "docs/src/guide.md": (
                    "# Guide\n\n## Set up: in 5 steps\n\n## Set up: in 5 steps\n\n"
                    "[again](#set-up-in-5-steps-1), [home](../../README.md#tool), "
                    "[web](https://example.org/x.md)\n\n"
                    "```sh\necho [not a link](nowhere.md)\n```\n"
                ),
            }
        )
        self.assertEqual(check_book.check(root), [])

    def test_a_link_to_a_missing_file_fails(self):
        root = self.tree(
            {
                "README.md": "# Tool\n\n[gone](docs/src/gone.md)\n",
                "docs/src/SUMMARY.md": SUMMARY,
                "docs/src/guide.md": "# Guide\n",
            }
        )
        self.assertEqual(
            check_book.check(root), ["README.md:3: no such file: docs/src/gone.md"]
        )

    def test_a_link_to_a_missing_heading_fails(self):
        root = self.tree(
            {
                "README.md": "# Tool\n",
                "docs/src/SUMMARY.md": SUMMARY,
                "docs/src/guide.md": "# Guide\n\n[up](../../README.md#usage) [here](#guid)\n",
            }
        )
        self.assertEqual(
            check_book.check(root),
            [
                "docs/src/guide.md:3: no heading #usage in README.md: ../../README.md#usage",
                "docs/src/guide.md:3: no heading #guid in docs/src/guide.md: #guid",
            ],
        )

    def test_a_chapter_missing_from_summary_fails_and_an_included_file_does_not(self):
        root = self.tree(
            {
                "README.md": "# Tool\n",
                "docs/src/SUMMARY.md": SUMMARY + "- [Gone](gone.md)\n",
                "docs/src/guide.md": "# Guide\n\n{{#include parts/table.md}}\n",
                "docs/src/parts/table.md": "| a | b |\n| --- | --- |\n",
                "docs/src/stray.md": "# Stray\n",
            }
        )
        self.assertEqual(
            check_book.check(root),
            [
                "docs/src/SUMMARY.md:4: no such file: gone.md",
                "docs/src/stray.md: not a chapter of docs/src/SUMMARY.md nor included by one",
            ],
        )

    def test_included_text_is_checked_from_the_chapter_that_shows_it(self):
        root = self.tree(
            {
                "README.md": (
                    "# Tool\n\n<!-- ANCHOR: list -->\n- [ok](https://example.org)\n"
                    "- [root-relative](BENCHMARKS.md)\n<!-- ANCHOR_END: list -->\n"
                ),
                "BENCHMARKS.md": "# Benchmarks\n",
                "docs/src/SUMMARY.md": SUMMARY,
                "docs/src/guide.md": "# Guide\n\n{{#include ../../README.md:list}}\n",
            }
        )
        self.assertEqual(
            check_book.check(root),
            [
                "docs/src/guide.md:3 (the include of ../../README.md:list): no such file: BENCHMARKS.md",
            ],
        )

    def test_slugs_follow_github(self):
        self.assertEqual(check_book.slug("synth-encode: building packs"), "synth-encode-building-packs")
        self.assertEqual(
            check_book.slug("Relay (synth-relay, or synth-replay relay)"),
            "relay-synth-relay-or-synth-replay-relay",
        )
        self.assertEqual(check_book.slug("Soak (synth-soak)"), "soak-synth-soak")


if __name__ == "__main__":
    unittest.main()
