#!/usr/bin/env python3
"""500 small migrations applied to a fresh PostgreSQL database, side by side in one run:
migration-runner (release binary behind pipeline-local's Runtime API host: secret, artifact
download and zip checks, lock, history checks, then apply) and the `sqlx` library's own
`Migrator::run` on the same files (functions/migration-runner/examples/sqlx_migrator.rs:
read the folder, connect, apply). Each run gets a new database; the order alternates.

The runner lints every pending migration first (squawk, the default policy), as `apply` always
does (issue 14), sets both timeouts before every migration and records each migration's
fingerprint with its history row (issue 33).

Timed for the runner: from the invocation's start to its report to CodePipeline (process
spawn excluded, like the reference's in-process timing). Goal (issue 33): within 1.1× of sqlx.

Usage: bench/migrations.py [--count 500] [--runs 5] [--postgres postgres://postgres@127.0.0.1:5432]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_migrations(folder, count):
    os.makedirs(folder)
    for v in range(1, count + 1):
        sql = (f"CREATE TABLE item_{v} (id BIGINT PRIMARY KEY, name TEXT NOT NULL, created_at TIMESTAMPTZ DEFAULT now());\n"
               f"INSERT INTO item_{v} (id, name) VALUES (1, 'first'), (2, 'second');\n"
               f"CREATE INDEX item_{v}_name ON item_{v} (name);\n")
        with open(os.path.join(folder, f"{v:05d}_create_item_{v}.sql"), "w") as f:
            f.write(sql)


def psql(base, sql):
    subprocess.run(["psql", f"{base}/test", "-q", "-c", sql], check=True, capture_output=True)


def fresh_db(base):
    name = "bench_" + uuid.uuid4().hex[:10]
    psql(base, f"CREATE DATABASE {name}")
    return name


def run_sqlx(folder, base, name):
    out = subprocess.run([os.path.join(ROOT, "target/release/examples/sqlx_migrator"), folder, f"{base}/{name}"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["ms"] / 1000


def run_runner(artifact, base, name, tmp):
    host_port = base.split("@", 1)[1]
    host, port = host_port.split(":")
    secrets = os.path.join(tmp, f"{name}.json")
    arn = f"arn:aws:secretsmanager:us-east-1:111111111111:secret:{name}"
    with open(secrets, "w") as f:
        json.dump({arn: {"engine": "postgres", "host": host, "port": int(port), "username": "postgres",
                         "password": "bench", "dbname": name}}, f)
    params = json.dumps({"database_secret_arn": arn, "input": "BuildOutput", "path": "db/migrations"})
    cmd = [os.path.join(ROOT, "target/release/pipeline-local"), "invoke", "migration-runner",
           "--event", "events/codepipeline-job.json", "--user-parameters", params,
           "--artifact", f"BuildOutput={artifact}", "--secrets", secrets,
           "--binary", os.path.join(ROOT, "target/release/migration-runner"),
           "--timeout", "900", "--json", "--quiet", "--state-dir", tempfile.mkdtemp(dir=tmp)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    report = json.loads(out.stdout)
    record = report["job"]["record"]
    if record["status"] != "Succeeded":
        sys.exit(f"migration-runner: {record['results']}")
    invocation = report["job"]["invocations"][0]
    reported = next(c for c in report["calls"] if c["operation"] == "PutJobSuccessResult" and c["status"] == 200)
    applied = record["results"][-1]["outputVariables"]["AppliedCount"]
    return (reported["at_ms"] - invocation["started_at_ms"]) / 1000, int(applied)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    opts = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "migration-runner", "-p", "pipeline-local"],
                   cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "migration-runner", "--example", "sqlx_migrator"],
                   cwd=ROOT, check=True)
    results = {"migration-runner": [], "sqlx Migrator::run": []}
    dropped = []
    with tempfile.TemporaryDirectory(prefix="migrations-bench-") as tmp:
        artifact = os.path.join(tmp, "artifact")
        folder = os.path.join(artifact, "db", "migrations")
        write_migrations(folder, opts.count)
        for run in range(opts.runs):
            order = ["migration-runner", "sqlx Migrator::run"]
            if run % 2:
                order.reverse()
            for subject in order:
                name = fresh_db(opts.postgres)
                dropped.append(name)
                if subject == "migration-runner":
                    seconds, applied = run_runner(artifact, opts.postgres, name, tmp)
                    assert applied == opts.count, applied
                else:
                    seconds = run_sqlx(folder, opts.postgres, name)
                results[subject].append(seconds)
                print(f"run {run + 1}: {subject:20s} {seconds:7.3f} s", flush=True)
    for name in dropped:
        psql(opts.postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    ours = statistics.median(results["migration-runner"])
    reference = statistics.median(results["sqlx Migrator::run"])
    print(f"\n{opts.count} migrations, median of {opts.runs} runs")
    print(f"  migration-runner     {ours:7.3f} s")
    print(f"  sqlx Migrator::run   {reference:7.3f} s")
    print(f"  ratio                {ours / reference:7.2f}×  (goal ≤ 1.1×)")


if __name__ == "__main__":
    main()
