#!/usr/bin/env python3
"""Tests of scripts/check-cycles.py on small crates written to a temporary folder.

    python3 -m unittest discover -s scripts -p 'test_*.py'
"""
import contextlib
import importlib.util
import io
import os
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("check_cycles", os.path.join(HERE, "check-cycles.py"))
check_cycles = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_cycles)


class CheckCycles(unittest.TestCase):
    def tree(self, files):
        """A temporary folder holding `files` ({relative path: text}); returns its path."""
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        for rel, text in files.items():
            path = os.path.join(tmp.name, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(textwrap.dedent(text))
        return tmp.name

    def circles(self, files):
        """The circles of a crate `c` made of `files` (under c/src/), as sorted relative paths."""
        root = self.tree({"c/Cargo.toml": "[package]\nname = 'c'\n", **{f"c/src/{k}": v for k, v in files.items()}})
        return [[os.path.relpath(f, root) for f in files] for _, files, _ in check_cycles.circles(root)]

    def run_main(self, root):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = check_cycles.main(["check-cycles.py", root])
        return code, out.getvalue()

    def test_circle_is_found_and_fails(self):
        files = {
            "lib.rs": "mod a;\nmod b;\nmod c;\n",
            "a.rs": "use crate::b::B;\npub struct A;\n",
            "b.rs": "pub struct B(crate::c::C);\n",
            "c.rs": "pub struct C;\nfn f() -> crate::a::A { todo!() }\n",
        }
        self.assertEqual(self.circles(files), [["c/src/a.rs", "c/src/b.rs", "c/src/c.rs"]])
        root = self.tree({"c/Cargo.toml": "", **{f"c/src/{k}": v for k, v in files.items()}})
        code, out = self.run_main(root)
        self.assertEqual(code, 1)
        self.assertIn("c: circle of 3: c/src/a.rs, c/src/b.rs, c/src/c.rs\n", out)
        self.assertIn("    a.rs:1 -> b.rs\n", out)
        self.assertIn("    c.rs:2 -> a.rs\n", out)

    def test_dag_passes(self):
        root = self.tree(
            {
                "w/Cargo.toml": "[workspace]\n",
                "w/one/Cargo.toml": "",
                "w/one/src/lib.rs": "mod a;\nmod b;\nmod c;\npub use a::A;\npub struct Root;\n",
                "w/one/src/a.rs": "use crate::{b::B, c};\npub struct A(B, c::C);\n",
                "w/one/src/b.rs": "use super::c::C;\npub struct B(C);\n",
                # Paths to the crate root are no edge (here from every module).
                "w/one/src/c.rs": "pub struct C(crate::Root, super::A);\n",
                "w/two/Cargo.toml": "",
                "w/two/src/main.rs": "mod x;\nfn main() {}\n",
                "w/two/src/x.rs": "",
            }
        )
        self.assertEqual(self.run_main(root), (0, "no import circles\n"))

    def test_test_only_code_is_ignored(self):
        files = {
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::{more::M, only_tests::H, B};\npub struct A;\n",
            "b.rs": """\
                pub struct B;
                // crate::a::A in a comment, and in a string:
                const S: &str = "crate::a::A";
                const C: char = '{';
                fn f<'a>(x: &'a str) -> &'a str { x }
                #[cfg(test)]
                use crate::a::A;
                #[cfg(all(test, unix))]
                fn helper() -> crate::a::A { crate::a::A }
                #[cfg(test)]
                mod more;
                mod only_tests;
                #[cfg(test)]
                mod tests {
                    use crate::a::A;
                    #[test]
                    fn t() { let _ = super::super::a::A; }
                }
            """,
            "b/more.rs": "use crate::a::A;\n",
            "b/only_tests.rs": "//! Test helpers.\n#![cfg(test)]\nuse std::fmt;\nuse crate::a::A;\n",
        }
        self.assertEqual(self.circles(files), [])
        # The same edge outside the tests closes the circle.
        files["b.rs"] += "pub fn g() -> crate::a::A { crate::a::A }\n"
        self.assertEqual(self.circles(files), [["c/src/a.rs", "c/src/b.rs"]])

    def test_files_outside_src_are_not_read(self):
        files = {
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\n",
            "b.rs": "pub struct B;\n",
            "../tests/it.rs": "use crate::a::A;\n",
            "../benches/bench.rs": "use crate::a::A;\n",
            "../examples/ex.rs": "use crate::a::A;\n",
            "orphan.rs": "use crate::a::A;\n",  # declared by no `mod`
        }
        self.assertEqual(self.circles(files), [])

    def test_child_naming_its_parent_with_super_is_an_edge(self):
        files = {
            "lib.rs": "mod client;\n",
            "client/mod.rs": "mod sender;\npub struct Shared;\nfn f(s: crate::client::sender::Sender) {}\n",
            "client/sender.rs": "use super::Shared;\npub struct Sender(Shared);\n",
        }
        self.assertEqual(self.circles(files), [["c/src/client/mod.rs", "c/src/client/sender.rs"]])

    def test_super_groups_and_siblings_in_folders(self):
        files = {
            "lib.rs": "pub mod pack;\n",
            "pack.rs": "mod reader;\nmod digest;\n",
            "pack/reader.rs": "pub struct Reader(super::digest::Digest);\n",
            "pack/digest.rs": "use super::{reader::{self, Reader}, super::pack};\npub struct Digest;\n",
        }
        self.assertEqual(self.circles(files), [["c/src/pack/digest.rs", "c/src/pack/reader.rs"]])

    def test_super_in_an_inline_module_is_its_file(self):
        files = {
            "lib.rs": "mod net;\n",
            "net/mod.rs": "mod socket;\nfn f() -> crate::net::socket::Socket { todo!() }\n",
            # `super` inside `mod inner` is socket.rs itself, not net/mod.rs.
            "net/socket.rs": "pub struct Socket;\nmod inner {\n    const C: char = '}';\n    use super::Socket;\n}\n",
        }
        self.assertEqual(self.circles(files), [])
        files["net/socket.rs"] += "mod other {\n    use super::super::f;\n}\n"
        self.assertEqual(self.circles(files), [["c/src/net/mod.rs", "c/src/net/socket.rs"]])

    def test_paths_in_attributes_and_macros(self):
        files = {
            "lib.rs": "mod error;\nmod limits;\nmod conf;\n",
            "error.rs": '#[derive(Debug)]\npub enum E {\n    #[error("{}", crate::limits::MAX)]\n    Big,\n}\n',
            "limits.rs": "pub const MAX: u64 = 1;\nmacro_rules! e { () => { $crate::error::E::Big } }\n"
            "fn d() -> crate::conf::C { todo!() }\n",
            "conf.rs": '#[derive(Deserialize)]\nstruct C {\n    #[serde(with = "crate::limits")]\n    x: u64,\n}\n',
        }
        self.assertEqual(self.circles(files), [["c/src/conf.rs", "c/src/error.rs", "c/src/limits.rs"]])

    def test_path_attribute_and_each_bin_target(self):
        files = {
            "main.rs": "#[path = \"impl/one.rs\"]\nmod one;\nmod two;\nfn main() {}\n",
            "impl/one.rs": "use crate::two::T;\n",
            "two.rs": "pub struct T;\nfn f() { crate::one::g() }\n",
            "bin/tool/main.rs": "mod p;\nmod q;\nfn main() {}\n",
            "bin/tool/p.rs": "use crate::q::Q;\n",
            "bin/tool/q.rs": "use crate::p::P;\n",
        }
        self.assertEqual(
            self.circles(files),
            [["c/src/impl/one.rs", "c/src/two.rs"], ["c/src/bin/tool/p.rs", "c/src/bin/tool/q.rs"]],
        )

    def test_no_crate_is_an_error(self):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            code = check_cycles.main(["check-cycles.py", self.tree({"README": ""})])
        self.assertEqual(code, 2)
        self.assertIn("no crate", err.getvalue())


if __name__ == "__main__":
    unittest.main()
