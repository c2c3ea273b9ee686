#!/usr/bin/env python3
"""Peak RSS of streaming a 1 GiB artifact from S3 through pipeline-ext's zip reader and writer
back to S3 (the fixture action's `copy`), under the local Runtime API host and local S3.

Goal: peak RSS under 64 MiB whatever the artifact size.

Usage: bench/artifact_stream_rss.py [--gib 1.0]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_zip(path, total_bytes):
    """Half incompressible files (stored), half text-like files (deflated)."""
    block = os.urandom(1 << 20)
    # Text that compresses about 2:1, like minified assets (repetitive text would trip the
    # 200:1 zip-bomb guard, as it should).
    text = b"\n".join(os.urandom(32).hex().encode() for _ in range(16000))
    written = 0
    n = 0
    with zipfile.ZipFile(path, "w") as archive:
        while written < total_bytes:
            if n % 2 == 0:
                size = 16 << 20
                with archive.open(f"bin/blob-{n:04d}.bin", "w") as out:
                    for i in range(size >> 20):
                        out.write(block[i:] + block[:i])
            else:
                size = len(text)
                info = zipfile.ZipInfo(f"text/page-{n:04d}.txt")
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, text)
            written += size
            n += 1
    return n, written


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    opts = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "invoke-contract", "-p", "pipeline-local"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="artifact-rss-") as tmp:
        source = os.path.join(tmp, "input.zip")
        files, size = make_zip(source, int(opts.gib * (1 << 30)))
        started = time.monotonic()
        out = subprocess.run(
            [
                os.path.join(ROOT, "target/release/pipeline-local"), "invoke", "fixture-action",
                "--event", "events/codepipeline-job-kms.json",
                "--user-parameters", '{"copy": {"input": "BuildOutput", "output": "Release"}}',
                "--artifact", f"BuildOutput={source}",
                "--binary", os.path.join(ROOT, "target/release/fixture-action"),
                "--state-dir", os.path.join(tmp, "state"), "--timeout", "900", "--json", "--quiet",
            ],
            cwd=ROOT, capture_output=True, text=True,
        )
        elapsed = time.monotonic() - started
        report = json.loads(out.stdout)
        job = report["job"]
        if job["record"]["status"] != "Succeeded":
            sys.exit(f"copy failed: {job['record']['results']}")
        rss_mib = max(i["peak_rss_kib"] for i in job["invocations"]) / 1024
        parts = sum(1 for c in report["calls"] if c["operation"] == "UploadPart")
        print(f"artifact: {files} files, {size / (1 << 30):.2f} GiB uncompressed, input zip {os.path.getsize(source) / (1 << 20):.0f} MiB")
        print(f"copy through reader + writer: {elapsed:.1f} s wall (incl. host start), {parts} multipart parts uploaded")
        print(f"peak RSS of the function process: {rss_mib:.1f} MiB (goal: < 64 MiB) -> {'PASS' if rss_mib < 64 else 'FAIL'}")
        if rss_mib >= 64:
            sys.exit(1)


if __name__ == "__main__":
    main()
