// pipeline-local console: reads /api/state when /api/events says it changed, and draws the
// pipeline, the selected action, the timeline and the recorded Slack channel. Text from the
// run goes in with textContent; only Slack messages come as HTML, rendered and escaped by the
// server (console/block_kit.rs).
"use strict";

let state = null;
let chosenExecution = null; // null: follow the newest execution
let selected = null; // {stage, action}

const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function seconds(ms) {
  if (ms === null || ms === undefined) return "";
  return `${(ms / 1000).toFixed(1)} s`;
}

function took(run) {
  if (!run.started_ms) return "";
  if (!run.finished_ms) return "running";
  return seconds(run.finished_ms - run.started_ms);
}

function currentExecution() {
  if (!state || state.executions.length === 0) return null;
  const chosen = state.executions.find((e) => e.id === chosenExecution);
  return chosen || state.executions[state.executions.length - 1];
}

async function refresh() {
  const response = await fetch("/api/state", { cache: "no-store" });
  if (!response.ok) throw new Error(`state: HTTP ${response.status}`);
  state = await response.json();
  render();
}

function render() {
  $("#pipeline-name").textContent = state.pipeline || "(no pipeline yet)";
  renderExecutionPicker();
  const execution = currentExecution();
  renderSummary(execution);
  renderStages(execution);
  renderDetails(execution);
  renderTimeline(execution);
  renderSlack();
  renderModal();
}

function renderExecutionPicker() {
  const select = $("#execution-select");
  const current = currentExecution();
  select.replaceChildren(
    ...state.executions
      .slice()
      .reverse()
      .map((e) =>
        el("option", {
          value: e.id,
          text: `${e.kind === "ROLLBACK" ? "↺ rollback " : ""}${e.id.slice(0, 8)} · ${e.state}`,
          selected: current && e.id === current.id ? "selected" : null,
        })
      )
  );
}

function renderSummary(execution) {
  const summary = $("#execution-summary");
  if (!execution) {
    summary.replaceChildren(el("span", { class: "muted", text: "No execution yet." }));
    return;
  }
  const parts = [
    el("strong", { text: `Execution ${execution.id}` }),
    " ",
    el("span", { class: "state", "data-state": execution.state, "data-testid": "execution-state", text: execution.state }),
    el("span", { class: "muted", text: `  ${took(execution)}  · trigger ${execution.trigger || "?"}` }),
  ];
  if (execution.kind === "ROLLBACK") {
    parts.push(el("div", { "data-testid": "rollback-banner", text: `↺ Rollback execution (${execution.trigger}) after execution ${execution.trigger_detail}` }));
  }
  if (state.waiting) {
    parts.push(el("div", { "data-testid": "waiting", text: `Waiting for a decision on ${state.waiting.stage} / ${state.waiting.action}: use the buttons in the Slack channel.` }));
  }
  summary.replaceChildren(...parts);
}

function actionRun(execution, stage, action) {
  if (!execution) return null;
  const runs = execution.actions.filter((a) => a.stage === stage && a.action === action);
  return runs.length ? runs[runs.length - 1] : null;
}

function renderStages(execution) {
  const container = $("#stages");
  const columns = [];
  state.stages.forEach((stage, index) => {
    const run = execution && execution.stages.find((s) => s.name === stage.name);
    const stageState = run ? run.state : "";
    const header = el("h3", {},
      el("span", { text: stage.name }),
      el("span", { class: "state", "data-state": stageState, text: stageState ? `${stageState}${run.attempt > 1 ? ` (attempt ${run.attempt})` : ""}` : "not run" }));
    const column = el("section", { class: "stage", "data-stage": stage.name, "data-state": stageState, "aria-label": `Stage ${stage.name}` }, header);
    if (stage.notes.length) column.append(el("p", { class: "stage-notes", text: stage.notes.join(" · ") }));
    const orders = [...new Set(stage.actions.map((a) => a.run_order))].sort((a, b) => a - b);
    for (const order of orders) {
      const row = el("div", { class: "run-order", "aria-label": `Run order ${order}` });
      for (const action of stage.actions.filter((a) => a.run_order === order)) {
        const result = actionRun(execution, stage.name, action.name);
        // A deploy that was only checked shows NOT DEPLOYED, a skipped action SKIPPED.
        const actionState = result ? (result.shown_as || result.state) : "";
        const pressed = selected && selected.stage === stage.name && selected.action === action.name;
        row.append(el("button", {
          type: "button", class: "action", "data-stage": stage.name, "data-action": action.name,
          "data-state": actionState, "aria-pressed": pressed ? "true" : "false",
          onclick: () => { selected = { stage: stage.name, action: action.name }; render(); },
        },
          el("span", { class: "name", text: action.name }),
          el("span", { class: "meta", text: `${action.provider} · ${action.category}` }),
          el("span", { class: "state", "data-state": actionState, text: actionState ? `${actionState} ${result.attempt > 1 ? `(attempt ${result.attempt}) ` : ""}${took(result)}` : "—" })));
      }
      column.append(row);
    }
    const rules = execution ? execution.rules.filter((r) => r.stage === stage.name) : [];
    if (rules.length) {
      column.append(el("ul", { class: "rules", "aria-label": "Conditions" },
        ...rules.map((r) => el("li", { class: "rule", "data-state": r.state, title: r.summary, text: `${r.kind} ${r.rule} (${r.provider}): ${r.state}` }))));
    }
    if (index > 0) columns.push(el("span", { class: "arrow", "aria-hidden": "true", text: "→" }));
    columns.push(column);
  });
  container.replaceChildren(...columns);
}

function table(headers, rows, attrs = {}) {
  return el("table", attrs,
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", { text: c }))))));
}

function logRows(lines) {
  return lines.map((line) => {
    try {
      const record = JSON.parse(line);
      const { level, target, message, fields, ...rest } = record;
      const extra = Object.assign({}, fields || {}, rest);
      const text = (fields && fields.message) || message || "";
      delete extra.message;
      return [level || "", target || "", text, Object.keys(extra).length ? JSON.stringify(extra) : ""];
    } catch (_) {
      return ["", "", line, ""];
    }
  });
}

function artifactList(kind, artifacts) {
  if (!artifacts.length) return null;
  const items = artifacts.map((artifact) => {
    const files = el("div", { class: "files" });
    const show = el("button", {
      type: "button", class: "bk-button", text: `Files of ${artifact.name}`,
      onclick: async () => {
        const query = new URLSearchParams({ bucket: artifact.bucket, key: artifact.key });
        const answer = await fetch(`/api/artifact?${query}`);
        const body = await answer.json();
        if (!answer.ok) { files.replaceChildren(el("p", { class: "error", text: body.error })); return; }
        const viewer = el("pre", { hidden: "hidden" });
        files.replaceChildren(el("ul", {}, ...body.files.map((f) => el("li", {},
          el("button", {
            type: "button", text: f.path,
            onclick: async () => {
              const q = new URLSearchParams({ bucket: artifact.bucket, key: artifact.key, path: f.path });
              viewer.textContent = await (await fetch(`/api/artifact/file?${q}`)).text();
              viewer.hidden = false;
            },
          }), ` ${f.size} bytes`))), viewer);
      },
    });
    return el("li", {}, el("code", { text: artifact.name }), ` s3://${artifact.bucket}/${artifact.key} `, show, files);
  });
  return el("div", {}, el("h3", { text: kind }), el("ul", {}, ...items));
}

function renderDetails(execution) {
  const panel = $("#details");
  if (!selected) { panel.hidden = true; return; }
  const run = actionRun(execution, selected.stage, selected.action);
  panel.hidden = false;
  $("#details-heading").textContent = `${selected.stage} / ${selected.action}`;
  const body = [];
  if (!run) {
    body.push(el("p", { class: "muted", text: "Not run in this execution." }));
  } else {
    const shown = run.shown_as || run.state;
    body.push(el("p", {}, el("span", { class: "state", "data-state": shown, "data-testid": "action-state", text: shown }), ` ${took(run)}${run.attempt > 1 ? ` · attempt ${run.attempt}` : ""}${run.error_code ? ` · ${run.error_code}` : ""}`));
    if (run.summary) body.push(el("pre", { "data-testid": "action-summary", text: run.summary }));
    if (run.notes.length) body.push(el("h3", { text: "Rounds and notes" }), el("ol", {}, ...run.notes.map((n) => el("li", { text: n }))));
    if (run.variables.length) body.push(el("h3", { text: "Output variables" }), table(["name", "value"], run.variables));
    const inputs = artifactList("Input artifacts", run.inputs);
    const outputs = artifactList("Output artifacts", run.outputs);
    if (inputs) body.push(inputs);
    if (outputs) body.push(outputs);
    const shape = (state.stages.find((s) => s.name === selected.stage) || { actions: [] }).actions.find((a) => a.name === selected.action);
    const isBuild = shape && ["CodeBuild", "Commands"].includes(shape.provider);
    if (run.logs.length && isBuild) body.push(el("h3", { text: `Build log (${run.logs.length} lines)` }), el("pre", { class: "build-log", "data-testid": "build-log", text: run.logs.join("\n") }));
    else if (run.logs.length) body.push(el("h3", { text: `Function log (${run.logs.length} lines)` }), table(["level", "target", "message", "fields"], logRows(run.logs), { class: "logs" }));
  }
  $("#details-body").replaceChildren(...body);
}

function renderTimeline(execution) {
  const rows = [];
  if (execution) {
    const start = execution.started_ms || 0;
    const runs = execution.actions.filter((a) => a.started_ms).sort((a, b) => a.started_ms - b.started_ms);
    for (const run of runs) {
      rows.push(el("tr", {},
        el("td", { class: "num", text: `+${seconds(run.started_ms - start)}` }),
        el("td", { class: "num", text: took(run) }),
        el("td", {}, el("span", { class: "state", "data-state": run.shown_as || run.state, text: run.shown_as || run.state })),
        el("td", { text: run.stage }),
        el("td", { text: run.attempt > 1 ? `${run.action} (attempt ${run.attempt})` : run.action })));
    }
    for (const rule of execution.rules) {
      rows.push(el("tr", {}, el("td", {}), el("td", {}), el("td", {}, el("span", { class: "rule", "data-state": rule.state, text: rule.state })), el("td", { text: rule.stage }), el("td", { text: `${rule.kind} rule ${rule.rule}` })));
    }
  }
  $("#timeline tbody").replaceChildren(...rows);
}

function messageNode(message) {
  const node = el("article", { class: "slack-message", "data-ts": message.ts },
    el("div", {}, el("span", { class: "who", text: "CodePipeline" }), el("span", { class: "when", text: `${message.ts}${message.updates ? " (edited)" : ""}` })));
  const content = el("div", { class: "content" });
  // Rendered and escaped by the server from the message's Block Kit.
  content.innerHTML = message.html || "";
  if (!message.html) content.textContent = message.text;
  node.append(content);
  for (const button of content.querySelectorAll("button[data-action-id]")) {
    button.addEventListener("click", () => pressButton(message, button));
  }
  return node;
}

function renderSlack() {
  const channel = $("#channel");
  const parents = state.slack.filter((m) => !m.thread_ts);
  if (!parents.length) { channel.replaceChildren(el("p", { class: "muted", text: "No messages yet." })); return; }
  channel.replaceChildren(...parents.map((parent) => {
    const node = messageNode(parent);
    const replies = state.slack.filter((m) => m.thread_ts === parent.ts);
    if (replies.length) node.append(el("div", { class: "thread", "aria-label": `${replies.length} replies` }, ...replies.map(messageNode)));
    return node;
  }));
}

async function post(path, body) {
  const answer = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const result = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(result.error || `HTTP ${answer.status}`);
  return result;
}

async function pressButton(message, button) {
  const confirmDialog = button.nextElementSibling && button.nextElementSibling.matches("dialog.bk-confirm") ? button.nextElementSibling : null;
  if (confirmDialog) {
    const chosen = await new Promise((resolve) => {
      confirmDialog.addEventListener("close", () => resolve(confirmDialog.returnValue), { once: true });
      confirmDialog.showModal();
    });
    if (chosen !== "confirm") return;
  }
  button.disabled = true;
  try {
    await post("/api/slack/click", { ts: message.ts, action_id: button.dataset.actionId });
  } catch (error) {
    alert(`The click was not delivered: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function renderModal() {
  const dialog = $("#modal");
  const html = state.waiting && state.waiting.modal;
  if (!html) {
    if (dialog.open) dialog.close();
    dialog.dataset.shown = "";
    return;
  }
  if (dialog.open && dialog.dataset.shown === html) return;
  dialog.dataset.shown = html;
  // Rendered and escaped by the server from the view approval-responder opened.
  dialog.innerHTML = html;
  const form = dialog.querySelector("form");
  const title = dialog.querySelector(".bk-modal-title");
  if (title) title.id = "modal-title";
  form.addEventListener("submit", async (event) => {
    const submitter = event.submitter;
    if (!submitter || submitter.value !== "submit") {
      await post("/api/slack/close", {});
      return;
    }
    event.preventDefault();
    const field = form.querySelector("textarea, input");
    submitter.disabled = true;
    try {
      await post("/api/slack/submit", { reason: field ? field.value : "" });
      dialog.close();
    } catch (error) {
      form.append(el("p", { class: "error", text: error.message }));
    } finally {
      submitter.disabled = false;
    }
  });
  if (!dialog.open) dialog.showModal();
}

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("changed", () => {
    refresh()
      .then(() => { $("#connection").textContent = state.live ? "live" : "browsing the state folder"; })
      .catch((error) => { $("#connection").textContent = error.message; });
  });
  source.addEventListener("error", () => {
    $("#connection").textContent = "disconnected: the run has stopped serving (reconnecting…)";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("#execution-select").addEventListener("change", (event) => {
    chosenExecution = event.target.value;
    render();
  });
  connect();
});
