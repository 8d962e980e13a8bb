/**
 * The runs dashboard in the browser, served as `/ui/app.js` by `dashboard.ts`.
 *
 * A classic script, not a module (no `import`/`export`), so that the build's CommonJS output runs
 * in a browser as it is. The little DOM it touches is typed inside the function below rather than
 * by adding TypeScript's DOM library, which would make browser globals (`name`, `status`, `close`,
 * …) type-check in the gateway's Node code too; nothing declared here is global.
 *
 * Run data is user data: everything is rendered as text (`textContent`, text nodes), never as
 * markup. The API key is kept in sessionStorage and sent only to this origin's `/api/v1/`.
 */
(() => {
  // The fields the page reads, of the shapes in `@flowruns/contracts` (api.ts, errors.ts). Copied,
  // not imported: an import would make this file a module, and Nx counts even an `import('…')`
  // type as a lazy load of the library. The e2e test reads them from the real API.
  interface FlowRun {
    id: string;
    flowId: string;
    flowVersionId: string;
    flowVersion: { displayName: string };
    status: string;
    startTime: string | null;
    finishTime: string | null;
    environment: string;
    triggeredBy: string | null;
    tags: string[];
    failedStepName: string | null;
    parentRunId: string | null;
    retryOf: string | null;
    attempt: number;
    pause: { requestId: string; stepName: string } | null;
    archivedAt: string | null;
    executionDataPurgedAt: string | null;
    created: string;
  }
  interface StepResult {
    type: string;
    status?: string;
    input?: unknown;
    output?: unknown;
    error?: unknown;
    duration?: number;
  }
  interface FlowRunWithSteps extends FlowRun {
    steps: Record<string, StepResult>;
  }
  interface Flow {
    id: string;
    displayName: string;
  }
  interface ErrorEnvelope {
    statusCode: number;
    code: string;
    params: Record<string, unknown>;
  }
  interface RunPage {
    data: FlowRun[];
    next: string | null;
    previous: string | null;
  }

  interface Elem {
    textContent: string | null;
    hidden: boolean;
    className: string;
    value: string;
    checked: boolean;
    disabled: boolean;
    href: string;
    title: string;
    append(...nodes: (Elem | string)[]): void;
    replaceChildren(...nodes: (Elem | string)[]): void;
    setAttribute(name: string, value: string): void;
    querySelector(selector: string): Elem | null;
    querySelectorAll(selector: string): ArrayLike<Elem>;
    addEventListener(type: string, listener: (event: { preventDefault(): void }) => void): void;
  }
  interface Browser {
    document: { getElementById(id: string): Elem | null; createElement(tag: string): Elem; body: Elem & { getAttribute(name: string): string | null } };
    sessionStorage: { getItem(key: string): string | null; setItem(key: string, value: string): void; removeItem(key: string): void };
    location: { hash: string };
    addEventListener(type: string, listener: () => void): void;
    fetch(url: string, init: FetchInit): Promise<FetchAnswer>;
  }
  /** The browser's fetch as used here (Node's typings lack `cache`). */
  interface FetchInit {
    method: string;
    headers: Record<string, string>;
    body?: string;
    credentials: 'omit';
    cache: 'no-store';
    redirect: 'error';
  }
  interface FetchAnswer {
    readonly ok: boolean;
    readonly status: number;
    text(): Promise<string>;
  }
  const browser = globalThis as unknown as Browser;
  const { document, sessionStorage, location } = browser;

  const KEY_STORAGE = 'flowruns.apiKey';
  /** Statuses in which a run may still change by itself: its page polls while it is in one. */
  const LIVE = new Set(['RUNNING', 'QUEUED', 'PAUSED']);
  // What the run decider accepts for each action, as the page carries it (`<body data-actions>`,
  // from `ACTION_STATUSES` in the contracts). Refusals the page cannot foresee (retries used up)
  // come back from the API.
  const actions = JSON.parse(document.body.getAttribute('data-actions') ?? '{}') as Partial<Record<'cancel' | 'retryFromFailedStep' | 'retryOnLatestVersion', string[]>>;
  const CANCELLABLE = new Set(actions.cancel ?? []);
  const RETRYABLE_FROM_FAILED_STEP = new Set(actions.retryFromFailedStep ?? []);
  const FINISHED = new Set(actions.retryOnLatestVersion ?? []);
  const POLL_MS = 1000;
  /** After an action the views catch up within milliseconds; the page keeps polling this long. */
  const SETTLE_MS = 5000;
  const LIST_PARAMS = ['flowId', 'failedStepName', 'createdAfter', 'createdBefore', 'includeArchived', 'limit', 'cursor'];
  const REPEATED_PARAMS = ['status', 'tags'];

  const byId = (id: string): Elem => {
    const el = document.getElementById(id);
    if (!el) throw new Error(`the page has no #${id}`);
    return el;
  };

  /** An element with text or child elements; strings become text nodes, never markup. */
  function h(tag: string, props: { class?: string; href?: string; title?: string } = {}, ...children: (Elem | string)[]): Elem {
    const el = document.createElement(tag);
    if (props.class) el.className = props.class;
    if (props.href !== undefined) el.href = props.href;
    if (props.title !== undefined) el.title = props.title;
    el.append(...children);
    return el;
  }

  // ---- state ----

  let apiKey: string | null = sessionStorage.getItem(KEY_STORAGE);
  let projectId: string | null = null;
  let flowsLoaded = false;
  /** Bumped by every navigation: answers and polls of an older view are dropped. */
  let generation = 0;
  let routedHash: string | null = null;
  let settleUntil = 0;
  let pollTimer: ReturnType<typeof setTimeout> | undefined;
  let listQuery = new URLSearchParams();
  let page: RunPage | null = null;
  let currentRun: FlowRunWithSteps | null = null;

  // ---- the API ----

  class ApiError extends Error {
    constructor(readonly envelope: ErrorEnvelope) {
      super(`${envelope.code} (${envelope.statusCode})`);
    }
  }

  const isEnvelope = (v: unknown): v is ErrorEnvelope =>
    typeof v === 'object' && v !== null && typeof (v as ErrorEnvelope).code === 'string' && typeof (v as ErrorEnvelope).statusCode === 'number';

  /** One call to this gateway's public API with the key; an error answer throws its envelope. */
  async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown, key = apiKey): Promise<{ status: number; body: T }> {
    // The key goes to this origin's API and nowhere else (the CSP's connect-src says the same).
    if (!path.startsWith('/api/v1/')) throw new Error(`not an API path: ${path}`);
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${key ?? ''}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: FetchAnswer;
    try {
      res = await browser.fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
      });
    } catch {
      throw new ApiError({ statusCode: 0, code: 'NETWORK_ERROR', params: { message: 'the gateway did not answer' } });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) throw new ApiError(isEnvelope(json) ? json : { statusCode: res.status, code: 'HTTP_ERROR', params: { body: text.slice(0, 300) } });
    return { status: res.status, body: json as T };
  }

  // ---- messages ----

  function clearMessages(): void {
    byId('error').hidden = true;
    byId('notice').hidden = true;
  }

  function showNotice(text: string): void {
    const el = byId('notice');
    el.textContent = text;
    el.hidden = false;
  }

  /** The error envelope as the API gave it: code, status, and each of its params. */
  function showError(e: unknown): void {
    const el = byId('error');
    if (e instanceof ApiError) {
      const { statusCode, code, params } = e.envelope;
      const items = Object.entries(params ?? {}).map(([k, v]) => h('li', {}, `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`));
      el.replaceChildren(h('span', { class: 'code' }, code), ` (HTTP ${statusCode})`, ...(items.length ? [h('ul', {}, ...items)] : []));
    } else {
      el.replaceChildren(h('span', { class: 'code' }, 'ERROR'), ` ${e instanceof Error ? e.message : String(e)}`);
    }
    el.hidden = false;
  }

  /** An error of the current view: a refused key signs out, anything else is shown. */
  function fail(e: unknown): void {
    if (e instanceof ApiError && e.envelope.statusCode === 401) {
      signOut();
      showError(e);
      return;
    }
    showError(e);
  }

  // ---- formatting ----

  function when(iso: string | null): Elem | string {
    if (!iso) return '—';
    return h('time', { title: iso }, new Date(iso).toLocaleString());
  }

  function duration(ms: number | null | undefined): string {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
  }

  function runDuration(run: FlowRun): string {
    if (!run.startTime) return '—';
    const end = run.finishTime ? Date.parse(run.finishTime) : Date.now();
    return duration(end - Date.parse(run.startTime));
  }

  function status(s: string | undefined): Elem | string {
    if (!s) return '—';
    return h('span', { class: `status status-${/^[A-Z_]+$/.test(s) ? s : 'OTHER'}` }, s);
  }

  function json(value: unknown, failure = false): Elem | string {
    if (value === undefined) return '—';
    return h('pre', { class: failure ? 'json failure' : 'json' }, JSON.stringify(value, null, 2) ?? String(value));
  }

  const runLink = (id: string): Elem => h('a', { href: `#/runs/${encodeURIComponent(id)}` }, h('code', {}, id));

  /** `datetime-local` value (local time) ⇄ ISO 8601 with a zone, as the API takes it. */
  function toIso(local: string): string | null {
    const t = Date.parse(local);
    return Number.isNaN(t) ? null : new Date(t).toISOString();
  }
  function toLocalInput(iso: string | null): string {
    const t = iso ? Date.parse(iso) : NaN;
    if (Number.isNaN(t)) return '';
    const d = new Date(t);
    const p = (n: number) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  // ---- navigation ----

  const SECTIONS = ['sign-in', 'runs-view', 'run-view'];
  function show(section: string): void {
    for (const s of SECTIONS) byId(s).hidden = s !== section;
  }

  /** Goes to `hash` and renders it now, even when it is the current one (a refresh). */
  function go(hash: string): void {
    location.hash = hash;
    route();
  }

  /** A hand-edited address with a stray `%` shows as an unknown run rather than breaking the page. */
  function safeDecode(s: string): string {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  }

  function route(): void {
    const gen = ++generation;
    clearTimeout(pollTimer);
    routedHash = location.hash;
    clearMessages();
    if (!apiKey || !projectId) {
      show('sign-in');
      return;
    }
    const [path, query = ''] = location.hash.replace(/^#/, '').split('?', 2);
    const run = /^\/runs\/([^/]+)$/.exec(path);
    if (run) void showRun(safeDecode(run[1]), gen);
    else void showRuns(new URLSearchParams(query), gen);
  }

  // ---- sign in ----

  async function signIn(key: string): Promise<void> {
    const { body } = await api<{ projectId: string; keyId: string }>('GET', '/api/v1/me', undefined, key);
    apiKey = key;
    projectId = body.projectId;
    sessionStorage.setItem(KEY_STORAGE, key);
    const identity = byId('identity');
    identity.textContent = `project ${body.projectId} · key ${body.keyId}`;
    identity.hidden = false;
    byId('sign-out').hidden = false;
  }

  function signOut(): void {
    sessionStorage.removeItem(KEY_STORAGE);
    apiKey = null;
    projectId = null;
    flowsLoaded = false;
    byId('identity').hidden = true;
    byId('sign-out').hidden = true;
    byId('flow-options').replaceChildren();
    route();
  }

  // ---- the list ----

  const filterForm = (): Elem => byId('filters');
  const field = (name: string): Elem => {
    const el = filterForm().querySelector(`[name="${name}"]`);
    if (!el) throw new Error(`the filter form has no ${name}`);
    return el;
  };

  /** The form's filters as the list's query (no cursor: a new filter starts at the newest page). */
  function filtersFromForm(): URLSearchParams {
    const q = new URLSearchParams();
    for (const name of ['flowId', 'failedStepName']) {
      const v = field(name).value.trim();
      if (v) q.set(name, v);
    }
    for (const name of ['createdAfter', 'createdBefore']) {
      const iso = toIso(field(name).value);
      if (iso) q.set(name, iso);
    }
    for (const box of Array.from(filterForm().querySelectorAll('input[name="status"]'))) if (box.checked) q.append('status', box.value);
    for (const tag of field('tags').value.split(',')) if (tag.trim()) q.append('tags', tag.trim());
    if (field('includeArchived').checked) q.set('includeArchived', 'true');
    const limit = field('limit').value.trim();
    if (limit && limit !== '10') q.set('limit', limit);
    return q;
  }

  function fillForm(q: URLSearchParams): void {
    field('flowId').value = q.get('flowId') ?? '';
    field('failedStepName').value = q.get('failedStepName') ?? '';
    field('createdAfter').value = toLocalInput(q.get('createdAfter'));
    field('createdBefore').value = toLocalInput(q.get('createdBefore'));
    const statuses = q.getAll('status');
    for (const box of Array.from(filterForm().querySelectorAll('input[name="status"]'))) box.checked = statuses.includes(box.value);
    field('tags').value = q.getAll('tags').join(', ');
    field('includeArchived').checked = q.get('includeArchived') === 'true';
    field('limit').value = q.get('limit') ?? '10';
  }

  async function loadFlows(): Promise<void> {
    if (flowsLoaded || !projectId) return;
    flowsLoaded = true;
    try {
      const { body } = await api<{ data: Flow[] }>('GET', `/api/v1/flows?projectId=${encodeURIComponent(projectId)}`);
      byId('flow-options').replaceChildren(
        ...body.data.map((f) => {
          const option = h('option', {}, f.displayName);
          option.value = f.id;
          return option;
        }),
      );
    } catch {
      // Suggestions only: the flow filter still takes any id.
      flowsLoaded = false;
    }
  }

  async function showRuns(q: URLSearchParams, gen: number): Promise<void> {
    show('runs-view');
    listQuery = q;
    fillForm(q);
    void loadFlows();
    const params = new URLSearchParams({ projectId: projectId ?? '' });
    for (const name of LIST_PARAMS) {
      const v = q.get(name);
      if (v !== null) params.set(name, v);
    }
    for (const name of REPEATED_PARAMS) for (const v of q.getAll(name)) params.append(name, v);
    try {
      const { body } = await api<RunPage>('GET', `/api/v1/flow-runs?${params.toString()}`);
      if (gen !== generation) return;
      page = body;
      byId('runs-body').replaceChildren(...body.data.map(runRow));
      byId('runs-empty').hidden = body.data.length > 0;
      byId('page-previous').disabled = !body.previous;
      byId('page-next').disabled = !body.next;
    } catch (e) {
      if (gen !== generation) return;
      page = null;
      byId('runs-body').replaceChildren();
      byId('page-previous').disabled = true;
      byId('page-next').disabled = true;
      fail(e);
    }
  }

  function runRow(run: FlowRun): Elem {
    const row = h(
      'tr',
      {},
      h('td', {}, runLink(run.id), ...(run.archivedAt ? [h('span', { class: 'archived', title: run.archivedAt }, 'archived')] : [])),
      h('td', { title: run.flowId }, run.flowVersion.displayName),
      h('td', {}, status(run.status)),
      h('td', {}, when(run.created)),
      h('td', {}, runDuration(run)),
      h('td', {}, ...run.tags.map((t) => h('span', { class: 'tag' }, t))),
      h('td', {}, run.failedStepName ?? '—'),
      h('td', {}, String(run.attempt)),
    );
    row.setAttribute('data-run-id', run.id);
    return row;
  }

  function pageTo(cursor: string | null): void {
    if (!cursor) return;
    const q = new URLSearchParams(listQuery);
    q.set('cursor', cursor);
    go(`#/runs?${q.toString()}`);
  }

  // ---- one run ----

  async function showRun(id: string, gen: number): Promise<void> {
    show('run-view');
    if (currentRun?.id !== id) {
      currentRun = null;
      byId('run-id').textContent = id;
      byId('run-status').replaceChildren();
      byId('run-meta').replaceChildren();
      byId('steps-body').replaceChildren();
      updateActions();
    }
    // An error of a poll is cleared by the next good one; an action's error stays.
    let pollFailed = false;
    const poll = async (): Promise<void> => {
      if (gen !== generation) return;
      let again = false;
      try {
        const { body: run } = await api<FlowRunWithSteps>('GET', `/api/v1/flow-runs/${encodeURIComponent(id)}`);
        if (gen !== generation) return;
        if (pollFailed) byId('error').hidden = true;
        pollFailed = false;
        renderRun(run);
        again = LIVE.has(run.status) || Date.now() < settleUntil;
        byId('run-live').hidden = !LIVE.has(run.status);
      } catch (e) {
        if (gen !== generation) return;
        pollFailed = true;
        fail(e);
        // Not projected yet (503 with Retry-After): try again; anything else stops the polling.
        again = e instanceof ApiError && e.envelope.statusCode === 503;
      }
      if (again && gen === generation) pollTimer = setTimeout(() => void poll(), POLL_MS);
    };
    await poll();
  }

  function renderRun(run: FlowRunWithSteps): void {
    currentRun = run;
    byId('run-id').textContent = run.id;
    byId('run-status').replaceChildren(status(run.status));
    const meta: [string, Elem | string][] = [
      ['Flow', h('span', {}, h('a', { href: `#/runs?flowId=${encodeURIComponent(run.flowId)}`, title: 'its runs' }, run.flowVersion.displayName), ' ', h('code', {}, run.flowId))],
      ['Flow version', h('code', {}, run.flowVersionId)],
      ['Attempt', String(run.attempt)],
      ['Created', when(run.created)],
      ['Started', when(run.startTime)],
      ['Finished', when(run.finishTime)],
      ['Duration', runDuration(run)],
      ['Tags', run.tags.length ? h('span', {}, ...run.tags.map((t) => h('span', { class: 'tag' }, t))) : '—'],
      ['Failed step', run.failedStepName ?? '—'],
      ['Paused at', run.pause ? run.pause.stepName : '—'],
      ['Parent run', run.parentRunId ? runLink(run.parentRunId) : '—'],
      ['Retry of', run.retryOf ? runLink(run.retryOf) : '—'],
      ['Archived', when(run.archivedAt)],
      ['Data purged', when(run.executionDataPurgedAt)],
      ['Triggered by', run.triggeredBy ?? '—'],
      ['Environment', run.environment],
    ];
    byId('run-meta').replaceChildren(
      ...meta.flatMap(([k, v]) => {
        const dd = h('dd', {}, v);
        dd.setAttribute('data-meta', k);
        return [h('dt', {}, k), dd];
      }),
    );
    byId('steps-body').replaceChildren(...Object.entries(run.steps).map(([name, step]) => stepRow(name, step)));
    updateActions();
  }

  function stepRow(name: string, step: StepResult): Elem {
    const row = h(
      'tr',
      {},
      h('td', {}, h('code', {}, name)),
      h('td', {}, step.type),
      h('td', {}, status(step.status)),
      h('td', {}, duration(step.duration)),
      h('td', {}, json(step.input)),
      h('td', {}, step.error !== undefined ? json(step.error, true) : json(step.output)),
    );
    row.setAttribute('data-step', name);
    return row;
  }

  let acting = false;

  /**
   * Each button is enabled only when the run's status allows its action: a retry of a finished run
   * (from the failed step: of a failed or stopped one) that is neither archived nor purged, a
   * cancel of a running or paused run, an archive of a run not archived yet. The command service
   * still decides, and its refusal is shown.
   */
  function updateActions(): void {
    const run = currentRun;
    const off = acting || !run;
    const retryable = !!run && run.archivedAt === null && run.executionDataPurgedAt === null;
    byId('retry-failed-step').disabled = off || !retryable || !RETRYABLE_FROM_FAILED_STEP.has(run.status);
    byId('retry-latest-version').disabled = off || !retryable || !FINISHED.has(run.status);
    byId('cancel-run').disabled = off || !CANCELLABLE.has(run.status);
    byId('archive-run').disabled = off || run.archivedAt !== null;
  }

  /** Runs one action on the shown run, then shows its result and refreshes the page. */
  async function act(work: (run: FlowRunWithSteps) => Promise<{ notice: string; goto?: string }>): Promise<void> {
    const run = currentRun;
    if (!run || acting || !projectId) return;
    acting = true;
    updateActions();
    clearMessages();
    try {
      const { notice, goto } = await work(run);
      settleUntil = Date.now() + SETTLE_MS;
      if (goto) go(goto);
      else route();
      showNotice(notice);
    } catch (e) {
      fail(e);
    } finally {
      acting = false;
      updateActions();
    }
  }

  async function retry(strategy: 'FROM_FAILED_STEP' | 'ON_LATEST_VERSION'): Promise<void> {
    await act(async (run) => {
      const { body } = await api<FlowRun>('POST', `/api/v1/flow-runs/${encodeURIComponent(run.id)}/retry`, { strategy, projectId });
      return body.id === run.id
        ? { notice: `Retrying from the failed step (attempt ${body.attempt}).` }
        : { notice: `Retried on the latest version as run ${body.id}.`, goto: `#/runs/${encodeURIComponent(body.id)}` };
    });
  }

  // ---- wiring ----

  async function start(): Promise<void> {
    byId('sign-in-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const input = byId('api-key');
      const key = input.value.trim();
      clearMessages();
      signIn(key).then(
        () => {
          input.value = '';
          route();
        },
        (e: unknown) => showError(e),
      );
    });
    byId('sign-out').addEventListener('click', () => signOut());
    byId('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      go(`#/runs?${filtersFromForm().toString()}`);
    });
    byId('reset-filters').addEventListener('click', () => go('#/runs'));
    byId('page-next').addEventListener('click', () => pageTo(page?.next ?? null));
    byId('page-previous').addEventListener('click', () => pageTo(page?.previous ?? null));
    byId('retry-failed-step').addEventListener('click', () => void retry('FROM_FAILED_STEP'));
    byId('retry-latest-version').addEventListener('click', () => void retry('ON_LATEST_VERSION'));
    byId('cancel-run').addEventListener('click', () =>
      void act(async (run) => {
        const { body } = await api<{ cancelled: number }>('POST', '/api/v1/flow-runs/cancel', { flowRunIds: [run.id] });
        return { notice: body.cancelled > 0 ? 'Run cancelled.' : 'Nothing was cancelled: the run is no longer running or paused.' };
      }),
    );
    byId('archive-run').addEventListener('click', () =>
      void act(async (run) => {
        const { body } = await api<{ archived: number }>('POST', '/api/v1/flow-runs/archive', { flowRunIds: [run.id] });
        return { notice: body.archived > 0 ? 'Run archived.' : 'Nothing was archived: the run was already archived.' };
      }),
    );
    // A hash the page set itself was rendered already (see `go`).
    browser.addEventListener('hashchange', () => {
      if (location.hash !== routedHash) route();
    });

    if (apiKey) {
      try {
        await signIn(apiKey);
      } catch (e) {
        signOut();
        showError(e);
        return;
      }
    }
    route();
  }

  void start();
})();
