#!/usr/bin/env python3
"""approval-responder cold start + one verified Approve click (spawn → Function URL response),
side by side with the Python/boto3 reference (bench/reference/python-approval-responder) doing
the same secret read, signature check, approver check and put_approval_result, each run on
fresh local endpoints. Ours also rewrites the Slack message (chat.update); the reference does not.

Goal (issue 5): at least 15× faster.

Usage: bench/approval_click.py [--runs 15]
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "approval-responder", "--bins", "--example", "click_bench"],
                   cwd=ROOT, check=True)
    python = os.path.join(ROOT, ".venv/bin/python")
    if not os.path.exists(python):
        sys.exit("run scripts/test.sh once first: it installs boto3 into .venv")
    subprocess.run([os.path.join(ROOT, "target/release/examples/click_bench"), str(opts.runs),
                    os.path.join(ROOT, "target/release/approval-responder"), python,
                    os.path.join(ROOT, "bench/reference/python-approval-responder/bootstrap.py")], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
