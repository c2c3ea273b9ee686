#!/usr/bin/env python3
"""Cold start of an invoke action under the local Lambda Runtime API host: process spawn →
PutJobSuccessResult received by the (local) CodePipeline endpoint, and the process's peak RSS.

Side by side in one run: our runtime (the release `fixture-action` binary: pipeline-ext's
JobRunner on lambda_runtime) and the Python/boto3 sample of the AWS documentation
(bench/reference/python-invoke-action). Both make the same PutJobSuccessResult call.

Usage: bench/cold_start.py [--runs N]   (run from anywhere; builds what it needs)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(*args, **kw):
    return subprocess.run(args, cwd=ROOT, check=True, **kw)


def one_run(program, args):
    cmd = [
        os.path.join(ROOT, "target/release/pipeline-local"), "invoke", "fixture-action",
        "--event", "events/codepipeline-job.json",
        "--user-parameters", '{"succeed": {}}',
        "--binary", program, "--json", "--quiet",
    ]
    for a in args:
        cmd += ["--arg", a]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    report = json.loads(out.stdout)
    invocation = report["job"]["invocations"][0]
    reported = [c for c in report["calls"] if c["operation"] == "PutJobSuccessResult" and c["status"] == 200]
    if not reported:
        sys.exit(f"{program}: the job was not reported: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    return reported[0]["at_ms"] - invocation["spawned_at_ms"], invocation["peak_rss_kib"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    sh("cargo", "build", "--release", "--quiet", "-p", "invoke-contract", "-p", "pipeline-local")
    python = os.path.join(ROOT, ".venv/bin/python")
    if not os.path.exists(python):
        sys.exit("run scripts/test.sh once first: it installs boto3 into .venv")
    subjects = {
        "rust (pipeline-ext runtime)": (os.path.join(ROOT, "target/release/fixture-action"), []),
        "python + boto3 (AWS sample)": (python, [os.path.join(ROOT, "bench/reference/python-invoke-action/bootstrap.py")]),
    }
    results = {name: [] for name in subjects}
    for _ in range(opts.runs):  # interleaved, so machine noise hits both alike
        for name, (program, args) in subjects.items():
            results[name].append(one_run(program, args))
    print(f"cold start, spawn → PutJobSuccessResult received ({opts.runs} runs each, interleaved)\n")
    print(f"{'subject':32} {'median ms':>10} {'p90 ms':>8} {'peak RSS MiB':>13}")
    rows = {}
    for name, samples in results.items():
        times = sorted(t for t, _ in samples)
        rss = max(r for _, r in samples) / 1024
        median = statistics.median(times)
        p90 = times[int(len(times) * 0.9) - 1] if len(times) >= 10 else times[-1]
        rows[name] = (median, rss)
        print(f"{name:32} {median:10.1f} {p90:8.1f} {rss:13.1f}")
    (rust_t, rust_rss), (py_t, py_rss) = rows.values()
    print(f"\nrust is {py_t / rust_t:.1f}x faster and uses {rust_rss / py_rss:.2f}x the peak RSS of the Python reference")


if __name__ == "__main__":
    main()
