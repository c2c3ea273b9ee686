"""The local console in a real browser: Debian's headless Chromium driven by Playwright.

Each test starts `pipeline-local run --console` on the example pipeline (the debug build of
the workspace), opens the page it prints, and does what a person would: watch the stages,
click Approve or Reject in the rendered Slack message (the page sends the request Slack would
send, signed, to approval-responder), type a reason in the modal, switch to the rollback
execution. Screenshots go to target/console-screenshots/.

Run by scripts/test.sh: `.venv/bin/python -m pytest tests/console`.
"""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "debug" / "pipeline-local"
SCREENSHOTS = ROOT / "target" / "console-screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# A whole run of the example pipeline takes a few seconds; the first one starts every function.
RUN_TIMEOUT_MS = 120_000


class ConsoleRun:
    """`pipeline-local run --console …` in the background, with its output collected."""

    def __init__(self, state_dir, *args):
        self.lines = []
        self.process = subprocess.Popen(
            [str(BINARY), "run", "--console", "--state-dir", str(state_dir), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.url = self.wait_for(r"^console: (http://127\.0\.0\.1:\d+/)").group(1)

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def wait_for(self, pattern, timeout=RUN_TIMEOUT_MS / 1000):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.process.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}:\n{self.output()}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.reader.join(timeout=5)
        return self.process.returncode


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1700, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The console works offline: any request leaving 127.0.0.1 is a bug.
    outside = []
    page.on("request", lambda request: None if request.url.startswith("http://127.0.0.1:") else outside.append(request.url))
    yield page
    context.close()
    assert not errors, f"script errors on the page: {errors}"
    assert not outside, f"the page asked outside loopback: {outside}"


def screenshot(target, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def stage(page, name):
    return page.locator(f'.stage[data-stage="{name}"]')


def test_approve_in_the_rendered_slack_message_completes_the_pipeline(page, tmp_path):
    run = ConsoleRun(tmp_path / "state")
    try:
        page.goto(run.url)
        for name in ["Source", "Process", "Plan", "Approve", "Migrate", "Deploy"]:
            expect(stage(page, name)).to_be_visible()
        expect(page.locator("#pipeline-name")).to_have_text("pipeline-local-ExamplePipeline")
        # The run waits at the approval for a person; the stages before it have succeeded.
        expect(page.get_by_test_id("waiting")).to_contain_text("Approve / ReleaseGate", timeout=RUN_TIMEOUT_MS)
        expect(stage(page, "Source")).to_have_attribute("data-state", "SUCCEEDED")
        expect(stage(page, "Plan")).to_have_attribute("data-state", "SUCCEEDED")
        expect(stage(page, "Approve")).to_have_attribute("data-state", "STARTED")
        expect(stage(page, "Deploy")).to_have_attribute("data-state", "")
        approve = page.locator('#channel button[data-action-id="approve"]')
        expect(approve).to_be_visible()
        screenshot(page, "console-waiting-for-approval")
        screenshot(page.locator("#pipeline-view"), "pipeline-waiting-for-approval")
        screenshot(page.locator("#slack-view"), "slack-approval-message")

        # Approve asks for confirmation first, as in Slack.
        approve.click()
        confirm = page.locator("dialog.bk-confirm[open]")
        expect(confirm).to_be_visible()
        confirm.locator('button[value="confirm"]').click()

        expect(page.get_by_test_id("execution-state")).to_have_text("SUCCEEDED", timeout=RUN_TIMEOUT_MS)
        for name in ["Approve", "Migrate", "Deploy"]:
            expect(stage(page, name)).to_have_attribute("data-state", "SUCCEEDED")
        expect(page.locator("#channel")).to_contain_text("Approved")
        # The Deploy stage's conditions, as checked.
        expect(stage(page, "Deploy").locator(".rule")).to_have_count(2)
        screenshot(page.locator("#pipeline-view"), "pipeline-succeeded")
        screenshot(page.locator("#slack-view"), "slack-after-approval")

        # An action's details: its summary, log lines as a table, its artifacts' files.
        page.locator('.action[data-action="Publish"]').click()
        expect(page.locator("#details-heading")).to_have_text("Deploy / Publish")
        expect(page.get_by_test_id("action-summary")).not_to_be_empty()
        expect(page.locator("#details table.logs tbody tr").first).to_be_visible()
        page.get_by_role("button", name=re.compile("^Files of ")).first.click()
        index = page.locator("#details .files").get_by_role("button", name="index.html").first
        expect(index).to_be_visible()
        index.click()
        expect(page.locator("#details .files pre")).to_contain_text("<html", ignore_case=True)
    finally:
        code = run.stop()
    assert "SUCCEEDED" in run.output(), run.output()
    assert code in (0, -2, 130), run.output()


def test_reject_with_a_reason_typed_in_the_modal_fails_the_pipeline(page, tmp_path):
    run = ConsoleRun(tmp_path / "state")
    try:
        page.goto(run.url)
        reject = page.locator('#channel button[data-action-id="reject"]')
        expect(reject).to_be_visible(timeout=RUN_TIMEOUT_MS)
        reject.click()
        modal = page.locator("dialog#modal[open]")
        expect(modal).to_be_visible()
        reason = "Release notes are missing the migration"
        modal.locator("textarea").fill(reason)
        screenshot(modal, "slack-reject-modal")
        modal.locator('button[value="submit"]').click()

        expect(page.get_by_test_id("execution-state")).to_have_text("FAILED", timeout=RUN_TIMEOUT_MS)
        expect(stage(page, "Approve")).to_have_attribute("data-state", "FAILED")
        expect(stage(page, "Deploy")).to_have_attribute("data-state", "")
        expect(page.locator("#channel")).to_contain_text(reason)
        page.locator('.action[data-action="ReleaseGate"]').click()
        expect(page.get_by_test_id("action-summary")).to_contain_text(reason)
        screenshot(page.locator("#slack-view"), "slack-after-reject")
    finally:
        run.stop()
    assert "FAILED" in run.output(), run.output()


def test_a_rollback_run_shows_the_rollback_execution(page, tmp_path):
    state = tmp_path / "state"
    first = subprocess.run([str(BINARY), "run", "--state-dir", str(state)], cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    run = ConsoleRun(state, "--approve", "auto", "--source", "examples/demo-broken")
    try:
        run.wait_for(r"The run has ended")
        page.goto(run.url)
        expect(page.get_by_test_id("rollback-banner")).to_contain_text("AutomatedRollback")
        expect(page.get_by_test_id("execution-state")).to_have_text("SUCCEEDED")
        expect(stage(page, "Deploy")).to_have_attribute("data-state", "SUCCEEDED")
        screenshot(page.locator("#pipeline-view"), "pipeline-rollback")
        # The failed execution it answers is one pick away, with its failed gate.
        failed = page.locator("#execution-select option", has_text="FAILED")
        page.select_option("#execution-select", failed.first.get_attribute("value"))
        expect(page.get_by_test_id("execution-state")).to_have_text("FAILED")
        expect(page.locator('.action[data-action="Gate"]')).to_have_attribute("data-state", "FAILED")
        expect(page.locator("#channel")).to_contain_text("Rolled back automatically")
    finally:
        run.stop()


def test_the_console_subcommand_shows_earlier_runs_and_decides_nothing(page, tmp_path):
    state = tmp_path / "state"
    first = ConsoleRun(state, "--approve", "auto")
    first.wait_for(r"The run has ended")
    first.stop()
    process = subprocess.Popen([str(BINARY), "console", "--state-dir", str(state)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"console: (\S+)", process.stdout.readline()).group(1)
        page.goto(url)
        expect(page.get_by_test_id("execution-state")).to_have_text("SUCCEEDED")
        expect(page.locator("#connection")).to_have_text("browsing the state folder")
        answer = page.request.post(f"{url}api/slack/click", data={"ts": "1", "action_id": "approve"})
        assert answer.status == 409, answer.text()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-C", str(repo), *args],
                   check=True, capture_output=True)


def test_a_teams_pipeline_shows_the_checked_deploy_and_the_build_log(page, tmp_path):
    repo = tmp_path / "storefront"
    shutil.copytree(ROOT / "examples" / "team" / "app", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first commit")
    run = ConsoleRun(tmp_path / "state", "--template", "examples/team/template.yaml", "--repo", str(repo),
                     "--assume-deployed", "--approve", "auto")
    try:
        run.wait_for(r"The run has ended")
        page.goto(run.url)
        expect(page.get_by_test_id("execution-state")).to_have_text("SUCCEEDED")
        # The ECS deploy was checked, not performed: the console says so, not SUCCEEDED.
        deploy = page.locator('.action[data-action="DeployService"]')
        expect(deploy).to_have_attribute("data-state", "NOT DEPLOYED")
        deploy.click()
        expect(page.get_by_test_id("action-state")).to_have_text("NOT DEPLOYED")
        expect(page.get_by_test_id("action-summary")).to_contain_text("imagedefinitions.json")
        # The build's commands' output is its log.
        page.locator('.action[data-action="BuildAndTest"]').click()
        expect(page.get_by_test_id("build-log")).to_contain_text("PASS greeting")
        expect(page.get_by_test_id("build-log")).to_contain_text("Phase complete: BUILD State: SUCCEEDED")
        screenshot(page.locator("main"), "team-pipeline")
    finally:
        run.stop()


SUPERSEDED_PIPELINE = """{
  "Resources": {
    "Artifacts": {"Type": "AWS::S3::Bucket"},
    "Web": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
      "PipelineType": "V2", "ExecutionMode": "SUPERSEDED",
      "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Artifacts"}},
      "Variables": [{"Name": "RUN", "DefaultValue": "x"}],
      "Stages": [
        {"Name": "Source", "Actions": [{"Name": "Source",
          "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"S3Bucket": {"Ref": "Artifacts"}, "S3ObjectKey": "source.zip"},
          "OutputArtifacts": [{"Name": "Src"}]}]},
        {"Name": "Build", "Actions": [{"Name": "Build",
          "ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "Commands", "Version": "1"},
          "Configuration": {"Commands": ["touch MARKS/#{variables.RUN}.building",
            "while [ ! -f MARKS/release ]; do sleep 0.05; done"]},
          "InputArtifacts": [{"Name": "Src"}]}]}]}}
  }
}"""


def test_a_superseded_execution_is_shown_as_such_beside_the_others(page, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    source = tmp_path / "source"
    source.mkdir()
    (source / "app.txt").write_text("app")
    template = tmp_path / "pipeline.json"
    template.write_text(SUPERSEDED_PIPELINE.replace("MARKS", str(marks)))
    state = tmp_path / "state"
    common = ["--template", str(template), "--source", str(source)]
    holder = ConsoleRun(state, *common, "--variable", "RUN=a")
    joiners = []
    try:
        deadline = time.monotonic() + 60
        while not (marks / "a.building").exists():
            assert time.monotonic() < deadline, holder.output()
            time.sleep(0.05)
        for run in ("b", "c"):
            joiner = subprocess.Popen([str(BINARY), "run", "--state-dir", str(state), *common, "--variable", f"RUN={run}"],
                                      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            joiners.append(joiner)
            for line in joiner.stdout:
                if "waiting to enter Build" in line:
                    break
        b, c = joiners
        assert b.wait(timeout=60) == 3, b.stdout.read()
        (marks / "release").write_text("")
        assert c.wait(timeout=60) == 0, c.stdout.read()
        holder.wait_for(r"The run has ended")
        page.goto(holder.url)
        superseded = page.locator("#execution-select option", has_text="SUPERSEDED")
        expect(superseded).to_have_count(1)
        expect(page.locator("#execution-select option", has_text="SUCCEEDED")).to_have_count(2)
        page.select_option("#execution-select", superseded.first.get_attribute("value"))
        expect(page.get_by_test_id("execution-state")).to_have_text("SUPERSEDED")
        expect(stage(page, "Build")).to_have_attribute("data-state", "SUPERSEDED")
        expect(stage(page, "Source")).to_have_attribute("data-state", "SUCCEEDED")
        screenshot(page.locator("main"), "superseded-execution")
    finally:
        for joiner in joiners:
            if joiner.poll() is None:
                joiner.kill()
        holder.stop()
