#!/usr/bin/env python3
"""pipeline-notifier cold start + the first event of an execution (spawn → response, the parent
message posted to Slack), side by side with the Python/boto3 reference
(bench/reference/python-pipeline-notifier) doing the same secret read, conditional DynamoDB claim,
GetPipelineExecution, chat.postMessage and ts record, each run on fresh local endpoints
(pipeline-local's CodePipeline, Secrets Manager, DynamoDB; a recorded Slack). Ours also keeps the folded execution record and its lease.

Goal (issue 6): at least 15× faster, at most half the peak RSS.

Usage: bench/pipeline_notifier.py [--runs 15]
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
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "pipeline-notifier", "--bins", "--example", "notify_bench"],
                   cwd=ROOT, check=True)
    python = os.path.join(ROOT, ".venv/bin/python")
    if not os.path.exists(python):
        sys.exit("run scripts/test.sh once first: it installs boto3 into .venv")
    subprocess.run([os.path.join(ROOT, "target/release/examples/notify_bench"), str(opts.runs),
                    os.path.join(ROOT, "target/release/pipeline-notifier"), python,
                    os.path.join(ROOT, "bench/reference/python-pipeline-notifier/bootstrap.py")], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
