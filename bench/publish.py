#!/usr/bin/env python3
"""Publish of a 3,000-file (~250 MB) build artifact into an S3 site bucket, spawn → job
reported, and the function's peak RSS, against the same local S3 under the same Runtime API
host. Side by side, interleaved: artifact-processor (release) and the Python/boto3 reference
shaped like the common public Lambdas (bench/reference/python-publish). Then a 1 GiB artifact
through artifact-processor alone, for its peak RSS.

Goals (issue 3): ≥ 3× faster, ≤ ¼ of the reference's peak RSS; 1 GiB with peak RSS < 64 MiB.

Usage: bench/publish.py [--runs 3] [--skip-gib]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAMS = json.dumps({"steps": [{"publish": {
    "input": "BuildOutput", "bucket": "www-example", "prefix": "", "delete_stale": True,
    "cache_control": {"index.html": "no-cache", "assets/**": "public, max-age=31536000, immutable"},
    "default_cache_control": "public, max-age=300"}}]})


def make_site(path, files, total_bytes):
    """Like a web build: images and fonts (incompressible), JS/CSS/HTML (text, ~2:1)."""
    average = total_bytes // files
    noise = os.urandom(4 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for i in range(files):
            size = max(200, int(average * (0.25 + 1.5 * ((i * 7919) % 1000) / 1000)))
            start = (i * 104729) % (len(noise) - size) if size < len(noise) else 0
            if i % 3 == 0:
                name, data = f"img/photo-{i:05d}.jpg", noise[start:start + size]
            else:
                ext = ["js", "css", "html"][i % 3 - 1] if i else "html"
                folder = "assets" if ext != "html" else "pages"
                name = "index.html" if i == 1 else f"{folder}/file-{i:05d}.{ext}"
                data = noise[start:start + size // 2].hex().encode()[:size]
            archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED)
    return files


def invoke(program, args, artifact, tmp):
    cmd = [os.path.join(ROOT, "target/release/pipeline-local"), "invoke", "artifact-processor",
           "--event", "events/codepipeline-job.json", "--user-parameters", PARAMS,
           "--artifact", f"BuildOutput={artifact}", "--bucket", "www-example",
           "--binary", program, "--timeout", "900", "--json", "--quiet",
           "--state-dir", tempfile.mkdtemp(dir=tmp)]
    for a in args:
        cmd += ["--arg", a]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    report = json.loads(out.stdout)
    record = report["job"]["record"]
    if record["status"] != "Succeeded":
        sys.exit(f"{program}: {record['results']}")
    invocation = report["job"]["invocations"][0]
    reported = next(c for c in report["calls"] if c["operation"] == "PutJobSuccessResult" and c["status"] == 200)
    published = record["results"][-1]["outputVariables"]["FilesPublished"]
    return (reported["at_ms"] - invocation["spawned_at_ms"]) / 1000, invocation["peak_rss_kib"] / 1024, published


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-gib", action="store_true")
    opts = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "artifact-processor", "-p", "pipeline-local"], cwd=ROOT, check=True)
    python = os.path.join(ROOT, ".venv/bin/python")
    if not os.path.exists(python):
        sys.exit("run scripts/test.sh once first: it installs boto3 into .venv")
    subjects = {
        "rust artifact-processor": (os.path.join(ROOT, "target/release/artifact-processor"), []),
        "python + boto3 (public Lambda shape)": (python, [os.path.join(ROOT, "bench/reference/python-publish/bootstrap.py")]),
    }
    with tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp:
        site = os.path.join(tmp, "site.zip")
        make_site(site, 3000, 250 << 20)
        print(f"artifact: 3000 files, {sum(i.file_size for i in zipfile.ZipFile(site).infolist()) / 1e6:.0f} MB uncompressed, zip {os.path.getsize(site) / 1e6:.0f} MB")
        results = {name: [] for name in subjects}
        for _ in range(opts.runs):
            for name, (program, args) in subjects.items():
                results[name].append(invoke(program, args, site, tmp))
        print(f"\npublish into an empty bucket, spawn → PutJobSuccessResult ({opts.runs} runs each, interleaved)\n")
        print(f"{'subject':40} {'median s':>9} {'peak RSS MiB':>13} {'files':>6}")
        rows = []
        for name, samples in results.items():
            median = statistics.median(s[0] for s in samples)
            rss = max(s[1] for s in samples)
            rows.append((median, rss))
            print(f"{name:40} {median:9.2f} {rss:13.1f} {samples[0][2]:>6}")
        (rt, rr), (pt, pr) = rows
        print(f"\nrust is {pt / rt:.1f}x faster with {rr / pr:.2f}x the peak RSS (goals: >= 3x, <= 0.25x)")

        if not opts.skip_gib:
            big = os.path.join(tmp, "big.zip")
            os.remove(site)
            make_site(big, 3000, 1 << 30)
            # Some files above the 8 MiB small-file limit take the spool-and-multipart path.
            with zipfile.ZipFile(big, "a") as archive:
                for i in range(4):
                    archive.writestr(f"video/clip-{i}.mp4", os.urandom(24 << 20), compress_type=zipfile.ZIP_STORED)
            total = sum(i.file_size for i in zipfile.ZipFile(big).infolist())
            seconds, rss, files = invoke(*subjects["rust artifact-processor"], big, tmp)
            print(f"\n1 GiB artifact ({files} files, {total / (1 << 30):.2f} GiB): {seconds:.1f} s, peak RSS {rss:.1f} MiB (goal < 64 MiB) -> {'PASS' if rss < 64 else 'FAIL'}")


if __name__ == "__main__":
    main()
