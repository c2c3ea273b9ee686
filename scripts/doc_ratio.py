#!/usr/bin/env python3
"""Doc lines (`///`, `//!`) as a share of the product crates' non-blank lines, tests left out.

The house keeps it at 12% or more across the workspace, as the runtime crates we model
ourselves on do (docs/architecture.md, "Rules of the house"). Prints each crate's share and
fails when the workspace's is below the floor.
"""
import glob
import sys

FLOOR = 12.0
CRATES = [
    "shared", "local", "functions/artifact-processor", "functions/deploy-gate",
    "functions/migration-runner", "functions/approval-notifier",
    "functions/approval-responder", "functions/pipeline-notifier",
]
TEST_FILES = ("/tests.rs", "/properties.rs", "/reference.rs")


def count(crate):
    docs = lines = 0
    for path in glob.glob(f"{crate}/src/**/*.rs", recursive=True):
        if path.endswith(TEST_FILES):
            continue
        text = open(path, encoding="utf-8").read()
        tests = text.find("#[cfg(test)]\nmod tests")
        if tests >= 0:
            text = text[:tests]
        for line in text.splitlines():
            line = line.strip()
            if line:
                lines += 1
                docs += line.startswith(("///", "//!"))
    return docs, lines


total_docs = total_lines = 0
for crate in CRATES:
    docs, lines = count(crate)
    total_docs += docs
    total_lines += lines
    print(f"{crate:32} {docs:5} / {lines:6} = {100 * docs / lines:4.1f}%")
share = 100 * total_docs / total_lines
print(f"{'workspace':32} {total_docs:5} / {total_lines:6} = {share:4.1f}% (floor {FLOOR}%)")
if share < FLOOR:
    sys.exit(f"error: doc lines are {share:.1f}% of product lines, under {FLOOR}%")
