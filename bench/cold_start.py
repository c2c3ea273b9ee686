#!/usr/bin/env python3
"""Cold start of an invoke action under the local Lambda Runtime API host: process spawn →
PutJobSuccessResult received by the (local) CodePipeline endpoint, and the process's peak RSS.

Side by side in one run: our runtime (the release `fixture-action` binary: pipeline-ext's
JobRunner on lambda_runtime) and the Python/boto3 sample of the AWS documentation
(bench/reference/python-invoke-action). Both make the same PutJobSuccessResult call, over plain
HTTP and over HTTPS (`pipeline-local invoke --tls`: a CA made for the run, appended to a copy of
the system bundle; ours trusts it through SSL_CERT_FILE, botocore through AWS_CA_BUNDLE), as
every call is HTTPS on Lambda.

Usage: bench/cold_start.py [--runs N] [--rust PATH] [--before PATH]
       bench/cold_start.py --all [--runs N]
  --rust PATH     another build of fixture-action to measure in place of target/release's
  --before PATH   an earlier build of fixture-action, measured as a third subject in the same run
  --all           every function (a minimal valid event of its own trigger each), the fixture
                  and the Python sample, interleaved in one run: spawn → first request received
                  by any endpoint, spawn → answer, peak RSS, over HTTP and HTTPS
                  (tests/contract/examples/cold_starts.rs)
(run from anywhere; builds what it needs)
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


def one_run(program, args, tls):
    cmd = [
        os.path.join(ROOT, "target/release/pipeline-local"), "invoke", "fixture-action",
        "--event", "events/codepipeline-job.json",
        "--user-parameters", '{"succeed": {}}',
        "--binary", program, "--json", "--quiet",
    ]
    for a in args:
        cmd += ["--arg", a]
    if tls:
        cmd.append("--tls")
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
    parser.add_argument("--rust", help="another build of fixture-action to measure in place of target/release's")
    parser.add_argument("--before", help="an earlier build of fixture-action, measured beside ours in the same run")
    parser.add_argument("--all", action="store_true", help="every function beside the fixture and the Python sample")
    opts = parser.parse_args()
    if opts.all:
        return every_function(opts.runs)
    sh("cargo", "build", "--release", "--quiet", "-p", "invoke-contract", "-p", "pipeline-local")
    python = os.path.join(ROOT, ".venv/bin/python")
    if not os.path.exists(python):
        sys.exit("run scripts/test.sh once first: it installs boto3 into .venv")
    subjects = {
        "rust (pipeline-ext runtime)": (opts.rust or os.path.join(ROOT, "target/release/fixture-action"), []),
        "python + boto3 (AWS sample)": (python, [os.path.join(ROOT, "bench/reference/python-invoke-action/bootstrap.py")]),
    }
    if opts.before:
        subjects["rust, before"] = (os.path.abspath(opts.before), [])
    runs = [(name, tls) for tls in (False, True) for name in subjects]
    results = {run: [] for run in runs}
    for _ in range(opts.runs):  # interleaved, so machine noise hits every subject alike
        for name, tls in runs:
            program, args = subjects[name]
            results[(name, tls)].append(one_run(program, args, tls))
    print(f"cold start, spawn → PutJobSuccessResult received ({opts.runs} runs each, interleaved)\n")
    print(f"{'subject':32} {'wire':>5} {'median ms':>10} {'p90 ms':>8} {'peak RSS MiB':>13}")
    rows = {}
    for (name, tls), samples in results.items():
        times = sorted(t for t, _ in samples)
        rss = max(r for _, r in samples) / 1024
        median = statistics.median(times)
        p90 = times[int(len(times) * 0.9) - 1] if len(times) >= 10 else times[-1]
        rows[(name, tls)] = (median, rss)
        print(f"{name:32} {'https' if tls else 'http':>5} {median:10.1f} {p90:8.1f} {rss:13.1f}")
    rust, python_ = list(subjects)[:2]
    print()
    for tls in (False, True):
        (rust_t, rust_rss), (py_t, py_rss) = rows[(rust, tls)], rows[(python_, tls)]
        print(f"{'https' if tls else 'http':>5}: rust is {py_t / rust_t:.1f}x faster and uses {rust_rss / py_rss:.2f}x the peak RSS of the Python reference")
    print(f"TLS adds {rows[(rust, True)][0] - rows[(rust, False)][0]:.1f} ms to rust, "
          f"{rows[(python_, True)][0] - rows[(python_, False)][0]:.1f} ms to python")
    if opts.before:
        before = "rust, before"
        print(f"TLS adds {rows[(before, True)][0] - rows[(before, False)][0]:.1f} ms to the earlier build; "
              f"over https ours is {rows[(before, True)][0] / rows[(rust, True)][0]:.2f}x its speed")


def every_function(runs):
    sh("cargo", "build", "--release", "--quiet", "--workspace", "--bins")
    sh("cargo", "build", "--release", "--quiet", "-p", "invoke-contract", "--example", "cold_starts")
    python = os.path.join(ROOT, ".venv/bin/python")
    if not os.path.exists(python):
        sys.exit("run scripts/test.sh once first: it installs boto3 into .venv")
    sh(os.path.join(ROOT, "target/release/examples/cold_starts"), str(runs),
       os.path.join(ROOT, "target/release"), python,
       os.path.join(ROOT, "bench/reference/python-invoke-action/bootstrap.py"))


if __name__ == "__main__":
    main()
