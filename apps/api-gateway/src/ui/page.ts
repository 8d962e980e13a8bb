import { ACTION_STATUSES, FLOW_RUN_STATUSES } from '@flowruns/contracts';

/**
 * The dashboard's page and style sheet, as strings: the build is plain `tsc`, which copies no
 * other files into `dist/`, and the Docker image ships `dist/` only. The page holds no data and
 * no inline script or style (the Content-Security-Policy forbids both); `app.ts` fills it in.
 */

/**
 * The statuses each action accepts a run in, as `<body data-actions>`: `app.ts` enables a run's
 * buttons from them, so the page follows the decider's rules (`ACTION_STATUSES`) instead of a copy.
 */
const actionsAttribute = JSON.stringify({
  cancel: ACTION_STATUSES.cancel,
  retryFromFailedStep: ACTION_STATUSES.retryFromFailedStep,
  retryOnLatestVersion: ACTION_STATUSES.retryOnLatestVersion,
}).replace(/"/g, '&quot;');

const statusBoxes = FLOW_RUN_STATUSES.map(
  (s) => `<label class="check"><input type="checkbox" name="status" value="${s}"> ${s}</label>`,
).join('\n          ');

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>Flow Runs</title>
  <link rel="stylesheet" href="/ui/app.css">
  <script src="/ui/app.js" defer></script>
</head>
<body data-actions="${actionsAttribute}">
  <header class="bar">
    <h1><a href="#/runs">Flow Runs</a></h1>
    <span id="identity" class="identity" hidden></span>
    <button id="sign-out" type="button" hidden>Sign out</button>
  </header>
  <main>
    <p id="notice" class="notice" role="status" hidden></p>
    <div id="error" class="error" role="alert" hidden></div>

    <section id="sign-in" hidden>
      <h2>Sign in</h2>
      <form id="sign-in-form" autocomplete="off">
        <label>API key <input id="api-key" type="password" required placeholder="sk-…" spellcheck="false" autocomplete="off"></label>
        <button type="submit">Sign in</button>
      </form>
      <p class="hint">The key is kept in this browser tab only (sessionStorage) and is sent only to this gateway's API.</p>
    </section>

    <section id="runs-view" hidden>
      <form id="filters" class="filters" autocomplete="off">
        <label>Flow <input name="flowId" list="flow-options" placeholder="flow id"></label>
        <datalist id="flow-options"></datalist>
        <label>Tags <input name="tags" placeholder="a, b (all of them)"></label>
        <label>Failed step <input name="failedStepName" placeholder="step name"></label>
        <label>Created after <input name="createdAfter" type="datetime-local" step="1"></label>
        <label>Created before <input name="createdBefore" type="datetime-local" step="1"></label>
        <label>Per page <input name="limit" type="number" min="1" max="100" value="10" class="narrow"></label>
        <label class="check"><input type="checkbox" name="includeArchived"> include archived</label>
        <fieldset class="statuses">
          <legend>Status</legend>
          ${statusBoxes}
        </fieldset>
        <div class="buttons">
          <button type="submit">Apply</button>
          <button type="button" id="reset-filters">Reset</button>
        </div>
      </form>
      <table class="runs">
        <thead><tr><th>Run</th><th>Flow</th><th>Status</th><th>Created</th><th>Duration</th><th>Tags</th><th>Failed step</th><th>Attempt</th></tr></thead>
        <tbody id="runs-body"></tbody>
      </table>
      <p id="runs-empty" class="hint" hidden>No runs match these filters.</p>
      <nav class="pager">
        <button type="button" id="page-previous">← Newer</button>
        <button type="button" id="page-next">Older →</button>
      </nav>
    </section>

    <section id="run-view" hidden>
      <p><a href="#/runs" id="back-to-list">← All runs</a></p>
      <h2>Run <code id="run-id"></code> <span id="run-status" class="status"></span> <span id="run-live" class="live" hidden>live</span></h2>
      <div class="actions">
        <button type="button" id="retry-failed-step">Retry from failed step</button>
        <button type="button" id="retry-latest-version">Retry on latest version</button>
        <button type="button" id="cancel-run">Cancel</button>
        <button type="button" id="archive-run">Archive</button>
      </div>
      <dl id="run-meta" class="meta"></dl>
      <h3>Steps</h3>
      <table class="steps">
        <thead><tr><th>Step</th><th>Type</th><th>Status</th><th>Duration</th><th>Input</th><th>Output</th></tr></thead>
        <tbody id="steps-body"></tbody>
      </table>
    </section>
  </main>
</body>
</html>
`;

export const DASHBOARD_CSS = `
:root { color-scheme: light; --line: #d8dde3; --muted: #5b6570; --accent: #2354c6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1c232b; background: #f6f7f9; }
.bar { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.2rem; background: #1c232b; color: #fff; }
.bar h1 { margin: 0; font-size: 1.1rem; }
.bar h1 a { color: inherit; text-decoration: none; }
.bar .identity { margin-left: auto; color: #c9d1d9; font-size: .9rem; }
main { padding: 1rem 1.2rem; max-width: 1400px; }
a { color: var(--accent); }
button { font: inherit; padding: .3rem .8rem; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
button[type=submit] { background: var(--accent); border-color: var(--accent); color: #fff; }
button:disabled { opacity: .45; cursor: default; }
input { font: inherit; padding: .25rem .4rem; border: 1px solid var(--line); border-radius: 4px; }
label { display: inline-flex; flex-direction: column; gap: .15rem; font-size: .85rem; color: var(--muted); }
input.narrow { width: 5rem; }
label.check { flex-direction: row; align-items: center; gap: .3rem; color: inherit; }
.hint { color: var(--muted); }
.notice { padding: .5rem .8rem; background: #e7f1ff; border: 1px solid #b6d0f7; border-radius: 4px; }
.error { padding: .5rem .8rem; background: #fdecec; border: 1px solid #f1b5b5; border-radius: 4px; color: #8a1c1c; }
.error .code { font-weight: 600; }
.error ul { margin: .3rem 0 0; padding-left: 1.2rem; }
#sign-in-form { display: flex; gap: .6rem; align-items: flex-end; }
#sign-in-form input { width: 28rem; max-width: 80vw; }
.filters { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: flex-end; padding: .8rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
.filters .statuses { display: flex; flex-wrap: wrap; gap: .2rem .8rem; border: 1px solid var(--line); border-radius: 4px; padding: .3rem .6rem; margin: 0; }
.filters .statuses legend { font-size: .85rem; color: var(--muted); }
.filters .buttons { display: flex; gap: .4rem; }
table { width: 100%; border-collapse: collapse; margin-top: .8rem; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; vertical-align: top; padding: .4rem .6rem; border-bottom: 1px solid var(--line); }
th { background: #eef1f4; font-weight: 600; font-size: .85rem; }
td code, h2 code { font-size: .85rem; }
.archived { margin-left: .4rem; font-size: .75rem; color: var(--muted); border: 1px solid var(--line); border-radius: 3px; padding: 0 .3rem; }
.tag { display: inline-block; margin: 0 .25rem .1rem 0; padding: 0 .35rem; border-radius: 3px; background: #eef1f4; font-size: .8rem; }
.status { display: inline-block; padding: .05rem .45rem; border-radius: 3px; font-size: .8rem; font-weight: 600; background: #e4e7eb; color: #333; }
.status-SUCCEEDED { background: #dcf5e3; color: #17612e; }
.status-RUNNING, .status-QUEUED { background: #dfeaff; color: #1d4aa8; }
.status-PAUSED { background: #fff3cd; color: #7a5a00; }
.status-FAILED, .status-INTERNAL_ERROR, .status-TIMEOUT, .status-QUOTA_EXCEEDED { background: #fde2e2; color: #8a1c1c; }
.status-STOPPED { background: #e4e7eb; color: #3c4650; }
.live { font-size: .75rem; color: #1d4aa8; }
.pager { display: flex; gap: .5rem; margin-top: .6rem; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin: .4rem 0 .8rem; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; padding: .8rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; }
pre.json { margin: 0; max-height: 16rem; max-width: 40rem; overflow: auto; white-space: pre-wrap; word-break: break-word; font-size: .8rem; background: #f6f8fa; padding: .3rem .4rem; border-radius: 3px; }
pre.json.failure { background: #fdecec; }
`;
