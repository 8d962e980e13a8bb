import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from '@flowruns/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { newApiKey, gatewayClient, startTarget } from './client';
import { startSystem } from './harness';

/**
 * The runs dashboard (`/ui`) in headless Chromium against the whole system: sign in, list, filter,
 * page, open a run, watch it finish live, retry (both strategies), cancel, archive, errors from the
 * envelope; each action's button is enabled only in the statuses the API accepts it in. Data is made over the public API; everything else goes through the page.
 *
 * The browser is Debian's `chromium` package (`apt-get install chromium`; `scripts/test.sh`
 * installs it when it runs as root), never a downloaded one. CHROMIUM_PATH overrides
 * `/usr/bin/chromium`. Without it this spec fails: a dashboard that was never opened has not passed.
 * Screenshots of the list and of a run go to `tmp/test-artifacts/ui/`.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '../../tmp/test-artifacts/ui');
const XSS = '<img src=x onerror="window.__xss=1">';

/**
 * Keeps a full-page screenshot as a test artifact, replacing the last run's, and checks that a
 * real PNG of the page's width was written (a missing or empty artifact fails the test).
 */
async function keepScreenshot(page: Page, name: string): Promise<void> {
  const file = path.join(ARTIFACTS, name);
  rmSync(file, { force: true });
  await page.screenshot({ path: file, fullPage: true });
  const png = readFileSync(file);
  expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  // IHDR: width then height, big-endian, from byte 16.
  expect({ width: png.readUInt32BE(16), tall: png.readUInt32BE(20) >= 300, bytes: png.length > 10_000 }).toEqual({
    width: page.viewportSize()!.width,
    tall: true,
    bytes: true,
  });
}

describe('the runs dashboard in a browser', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let api: ReturnType<typeof gatewayClient>;
  let target: Awaited<ReturnType<typeof startTarget>>;
  let browser: Browser;
  let page: Page;
  let base: string;
  let key: string;
  const projectId = 'proj_dashboard';
  const requested: string[] = [];
  const pageErrors: string[] = [];
  let flakyCalls = 0;

  const ids: {
    greeter: string;
    greeterRuns: string[];
    flaky: string;
    flakyRun: string;
    broken: string;
    brokenRun: string;
    approvalRuns: string[];
  } = { greeter: '', greeterRuns: [], flaky: '', flakyRun: '', broken: '', brokenRun: '', approvalRuns: [] };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH`);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    target = await startTarget((req) => {
      if (req.url === '/flaky') return ++flakyCalls === 1 ? { status: 503, body: { error: 'try later' } } : { status: 200, body: { ok: 'second time' } };
      return { status: 200, body: { ok: true } };
    });
    system = await startSystem(['command-service', 'projector', 'api-gateway', 'flow-worker']);
    base = system.apps['api-gateway'].url;
    key = (await newApiKey(system.db.url, projectId)).key;
    api = gatewayClient(base, key);
    browser = await chromium.launch({ executablePath: CHROMIUM });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(10000);
    page.on('request', (r) => requested.push(r.url()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      // The browser logs every 4xx answer it fetched; those the test provokes are checked on the page.
      if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) pageErrors.push(m.text());
    });
    await seed();
  });

  afterAll(async () => {
    await browser?.close();
    await system?.stop();
    await target?.close();
  });

  async function createFlow(displayName: string, steps: unknown[], tags: string[] = []): Promise<string> {
    const r = await api.post('/api/v1/flows', { projectId, displayName, tags, steps });
    expect({ status: r.status, body: r.status === 201 ? 'ok' : r.body }).toEqual({ status: 201, body: 'ok' });
    return r.body.id as string;
  }
  async function trigger(flowId: string, payload: unknown = {}): Promise<string> {
    const r = await api.post(`/api/v1/flows/${flowId}/run`, payload);
    expect({ status: r.status, body: r.status === 201 ? 'ok' : r.body }).toEqual({ status: 201, body: 'ok' });
    return r.body.id as string;
  }

  /** Five finished runs of one flow (one greeting a script tag), a failing one of each kind, two paused. */
  async function seed(): Promise<void> {
    ids.greeter = await createFlow('Greeter', [{ name: 'greet', type: 'transform', settings: { value: { greeting: 'Hello {{trigger.name}}!' } } }], ['greetings']);
    for (const name of ['Ada', 'Grace', 'Edsger', 'Barbara', XSS]) ids.greeterRuns.push(await trigger(ids.greeter, { name }));
    ids.flaky = await createFlow('Flaky', [
      { name: 'prepare', type: 'transform', settings: { value: 'ready' } },
      { name: 'call', type: 'http', settings: { method: 'GET', url: `${target.url}/flaky` } },
    ]);
    ids.flakyRun = await trigger(ids.flaky);
    ids.broken = await createFlow('Broken', [{ name: 'boom', type: 'fail', settings: { message: 'v1 is broken' } }]);
    ids.brokenRun = await trigger(ids.broken, { x: 'original payload' });
    const approval = await createFlow('Approval', [
      { name: 'approve', type: 'approval', settings: {} },
      { name: 'settle', type: 'delay', settings: { ms: 1500 } },
      { name: 'after', type: 'transform', settings: { value: 'comment: {{steps.approve.output.comment}}' } },
    ]);
    ids.approvalRuns.push(await trigger(approval), await trigger(approval));
    for (const id of ids.greeterRuns) await api.waitForRun(id, 'SUCCEEDED');
    await api.waitForRun(ids.flakyRun, 'FAILED');
    await api.waitForRun(ids.brokenRun, 'FAILED');
    for (const id of ids.approvalRuns) await api.waitForRun(id, 'PAUSED');
  }

  // ---- reading the page (locators, or scripts as strings: the test's TypeScript has no DOM) ----

  const text = async (selector: string): Promise<string> => ((await page.locator(selector).textContent()) ?? '').trim();
  const visible = (selector: string): Promise<boolean> => page.locator(selector).isVisible();
  // One read of the whole table (row by row, a re-render between reads would make a locator wait).
  const listedIds = async (): Promise<string[]> =>
    (await page.evaluate(`Array.from(document.querySelectorAll('#runs-body tr'), (tr) => tr.getAttribute('data-run-id'))`)) as string[];
  /** Polls until `probe` holds, with a deadline. */
  const until = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15000): Promise<T> =>
    waitFor(probe, { timeoutMs, intervalMs: 100, what });
  const untilListed = (what: string, expected: (ids: string[]) => boolean): Promise<string[]> =>
    until(what, async () => {
      const listed = await listedIds();
      return expected(listed) ? listed : undefined;
    });
  const runStatus = () => text('#run-status');
  /** The ids of the run page's action buttons that are enabled, in page order. */
  const enabledActions = async (): Promise<string[]> =>
    (await page.evaluate(`Array.from(document.querySelectorAll('#run-view .actions button')).filter((b) => !b.disabled).map((b) => b.id)`)) as string[];
  /** Waits for exactly these actions to be enabled (an action in flight disables them all for a moment). */
  const untilEnabled = (what: string, expected: string[]) =>
    until(`${what}: ${expected.join(', ') || 'no action'} enabled`, async () => (await enabledActions()).join() === expected.join());
  const SUCCEEDED_ACTIONS = ['retry-latest-version', 'archive-run'];
  const FAILED_ACTIONS = ['retry-failed-step', 'retry-latest-version', 'archive-run'];
  const ACTIVE_ACTIONS = ['cancel-run', 'archive-run'];
  const meta = (name: string) => text(`#run-meta dd[data-meta="${name}"]`);
  const stepCell = (step: string, column: number) => text(`#steps-body tr[data-step="${step}"] td:nth-child(${column})`);
  const applyFilters = (fill: () => Promise<void>) => async () => {
    await page.click('#reset-filters');
    await fill();
    await page.click('#filters button[type=submit]');
  };
  const openRun = async (id: string) => {
    await page.evaluate(`location.hash = '#/runs/${id}'`);
    await until(`run ${id} shown`, async () => (await text('#run-id')) === id && (await runStatus()) !== '');
  };

  it('refuses a wrong key with the error envelope, then signs in with a good one kept in sessionStorage', async () => {
    await page.goto(`${base}/ui`);
    await page.fill('#api-key', 'sk-not-a-real-key');
    await page.click('#sign-in-form button[type=submit]');
    await until('the 401 envelope', async () => (await visible('#error')) && (await text('#error .code')) === 'UNAUTHORIZED');
    expect(await visible('#runs-view')).toBe(false);

    await page.fill('#api-key', key);
    await page.click('#sign-in-form button[type=submit]');
    await until('the list', () => visible('#runs-view'));
    expect(await text('#identity')).toContain(`project ${projectId}`);
    expect(await page.evaluate('sessionStorage.getItem("flowruns.apiKey")')).toBe(key);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect(await visible('#error')).toBe(false);
  });

  it('lists the runs newest first, rendering run data as text', async () => {
    const listed = await untilListed('all nine runs', (l) => l.length === 9);
    const fromApi = (await api.get(`/api/v1/flow-runs?projectId=${projectId}&limit=100`)).body.data as { id: string }[];
    expect(listed).toEqual(fromApi.map((r) => r.id));
    expect(await text(`#runs-body tr[data-run-id="${ids.flakyRun}"] td:nth-child(3)`)).toBe('FAILED');
    expect(await text(`#runs-body tr[data-run-id="${ids.greeterRuns[0]}"] td:nth-child(2)`)).toBe('Greeter');
    expect(await text(`#runs-body tr[data-run-id="${ids.greeterRuns[0]}"] td:nth-child(6)`)).toBe('greetings');
    await keepScreenshot(page, 'runs-list.png');
  });

  it('filters by status (several), flow, tags, failed step, creation time and page size', async () => {
    await applyFilters(async () => {
      await page.check('#filters input[name=status][value=FAILED]');
      await page.check('#filters input[name=status][value=PAUSED]');
    })();
    const failedOrPaused = [ids.flakyRun, ids.brokenRun, ...ids.approvalRuns].sort();
    await untilListed('FAILED or PAUSED runs', (l) => [...l].sort().join() === failedOrPaused.join());
    expect(page.url()).toContain('status=FAILED&status=PAUSED');

    await applyFilters(() => page.fill('#filters input[name=flowId]', ids.greeter))();
    await untilListed("the Greeter's runs", (l) => [...l].sort().join() === [...ids.greeterRuns].sort().join());

    await applyFilters(() => page.fill('#filters input[name=tags]', 'greetings, nope'))();
    await untilListed('no run with both tags', (l) => l.length === 0);
    expect(await visible('#runs-empty')).toBe(true);
    await applyFilters(() => page.fill('#filters input[name=tags]', 'greetings'))();
    await untilListed('runs tagged greetings', (l) => l.length === 5);

    await applyFilters(() => page.fill('#filters input[name=failedStepName]', 'boom'))();
    await untilListed('the run failed at boom', (l) => l.join() === ids.brokenRun);

    await applyFilters(() => page.fill('#filters input[name=createdAfter]', '2999-01-01T00:00:00'))();
    await untilListed('nothing created in the future', (l) => l.length === 0);
    await applyFilters(() => page.fill('#filters input[name=createdBefore]', '2999-01-01T00:00:00'))();
    await untilListed('everything created before the future', (l) => l.length === 9);
    // The local time picked is sent as ISO 8601 with a zone.
    expect(decodeURIComponent(page.url())).toMatch(/createdBefore=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/);
  });

  it('pages with next and previous through a filtered list', async () => {
    await applyFilters(async () => {
      await page.fill('#filters input[name=flowId]', ids.greeter);
      await page.fill('#filters input[name=limit]', '2');
    })();
    const newestFirst = [...ids.greeterRuns].reverse();
    await untilListed('page 1', (l) => l.join() === newestFirst.slice(0, 2).join());
    expect(await page.locator('#page-previous').isDisabled()).toBe(true);
    await page.click('#page-next');
    await untilListed('page 2', (l) => l.join() === newestFirst.slice(2, 4).join());
    await page.click('#page-next');
    await untilListed('page 3', (l) => l.join() === newestFirst.slice(4).join());
    expect(await page.locator('#page-next').isDisabled()).toBe(true);
    await page.click('#page-previous');
    await untilListed('page 2 again', (l) => l.join() === newestFirst.slice(2, 4).join());
    // history.back() rather than page.goBack(), which may wait out its timeout on a same-document navigation.
    await page.evaluate('history.back()');
    await untilListed('page 3 again (browser back)', (l) => l.join() === newestFirst.slice(4).join());
  });

  it('shows an invalid query as the API refused it', async () => {
    await page.evaluate(`location.hash = '#/runs?cursor=not-a-cursor'`);
    await until('the 400 envelope', async () => (await visible('#error')) && (await text('#error .code')) === 'VALIDATION');
    expect(await text('#error')).toContain('field: cursor');
    await page.click('#reset-filters');
    await untilListed('the list again', (l) => l.length === 9);
    expect(await visible('#error')).toBe(false);
  });

  it("opens a run: its steps with status, duration, input and output, script tags shown as text", async () => {
    await page.click(`#runs-body tr[data-run-id="${ids.greeterRuns[4]}"] a`);
    await until('the run', async () => (await runStatus()) === 'SUCCEEDED');
    expect(await stepCell('greet', 2)).toBe('transform');
    expect(await stepCell('greet', 3)).toBe('SUCCEEDED');
    expect(await stepCell('greet', 4)).toMatch(/^\d+ ms$|^\d+\.\d s$/);
    expect(JSON.parse(await stepCell('greet', 6))).toEqual({ greeting: `Hello ${XSS}!` });
    expect(JSON.parse(await stepCell('trigger', 6))).toEqual({ name: XSS });
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    // Finished well: only a new run on the latest version, or archiving, is allowed.
    expect(await enabledActions()).toEqual(SUCCEEDED_ACTIONS);
  });

  it('updates a paused run live until it SUCCEEDED, without reloading the page', async () => {
    const [runId] = ids.approvalRuns;
    await openRun(runId);
    expect(await runStatus()).toBe('PAUSED');
    expect(await visible('#run-live')).toBe(true);
    expect(await enabledActions()).toEqual(ACTIVE_ACTIONS);
    await page.evaluate('window.__samePage = true');
    const paused = (await api.get(`/api/v1/flow-runs/${runId}`)).body as { pause: { requestId: string } };
    const resume = await fetch(`${base}/api/v1/flow-runs/${runId}/requests/${paused.pause.requestId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ approved: true, comment: 'ship it' }),
    });
    expect(resume.status).toBe(202);
    await until('RUNNING on the page', async () => (await runStatus()) === 'RUNNING');
    await until('SUCCEEDED on the page', async () => (await runStatus()) === 'SUCCEEDED');
    expect(await page.evaluate('window.__samePage')).toBe(true);
    expect(await visible('#run-live')).toBe(false);
    expect(JSON.parse(await stepCell('after', 6))).toBe('comment: ship it');
    expect(JSON.parse(await stepCell('approve', 6))).toEqual({ approved: true, comment: 'ship it' });
    // Regression: "Retry from failed step" was enabled here, and the API refuses it for a run that succeeded.
    expect(await enabledActions()).toEqual(SUCCEEDED_ACTIONS);
    await keepScreenshot(page, 'run.png');
  });

  it('retries a failed run from its failed step, after which only a retry on the latest version is offered', async () => {
    await openRun(ids.flakyRun);
    expect(await runStatus()).toBe('FAILED');
    expect(await text('#steps-body tr[data-step="call"] td:nth-child(6)')).toContain('503');
    expect(await enabledActions()).toEqual(FAILED_ACTIONS);
    await page.click('#retry-failed-step');
    await until('attempt 2 SUCCEEDED', async () => (await runStatus()) === 'SUCCEEDED' && (await meta('Attempt')) === '2');
    expect(await text('#notice')).toContain('Retrying from the failed step');
    expect(JSON.parse(await stepCell('call', 6))).toMatchObject({ status: 200, body: { ok: 'second time' } });
    await untilEnabled('the retried run that SUCCEEDED', SUCCEEDED_ACTIONS);
  });

  it('shows a retry the status allows but the command service refuses (attempts used up) from the envelope', async () => {
    // Still on the Broken flow's failing version; AP_MAX_RETRY_ATTEMPTS is 5 (the default), so the
    // first attempt and four retries use them up. The page cannot know the limit: the API answers.
    const runId = await trigger(ids.broken);
    await api.waitForRun(runId, 'FAILED');
    for (let attempt = 2; attempt <= 5; attempt++) {
      expect((await api.post(`/api/v1/flow-runs/${runId}/retry`, { projectId, strategy: 'FROM_FAILED_STEP' })).status).toBe(200);
      await api.waitForRun(runId, (r) => r.status === 'FAILED' && r.attempt === attempt);
    }
    await openRun(runId);
    expect(await meta('Attempt')).toBe('5');
    expect(await enabledActions()).toEqual(FAILED_ACTIONS);
    await page.click('#retry-failed-step');
    await until('the refusal', async () => (await visible('#error')) && (await text('#error .code')) === 'MAX_ATTEMPTS_REACHED');
    expect(await text('#error')).toContain('(HTTP 409)');
    expect(await text('#error')).toContain('maxAttempts: 5');
    expect(await runStatus()).toBe('FAILED');
  });

  it('retries a failed run on the latest version as a new run, and follows it', async () => {
    const v2 = await api.post(`/api/v1/flows/${ids.broken}/versions`, { steps: [{ name: 'fixed', type: 'transform', settings: { value: '{{trigger.x}}' } }] });
    expect(v2.status).toBe(201);
    await openRun(ids.brokenRun);
    expect(await runStatus()).toBe('FAILED');
    expect(await enabledActions()).toEqual(FAILED_ACTIONS);
    await page.click('#retry-latest-version');
    await until('the new run', async () => (await text('#run-id')) !== ids.brokenRun && (await runStatus()) === 'SUCCEEDED');
    expect(await meta('Retry of')).toBe(ids.brokenRun);
    expect(JSON.parse(await stepCell('fixed', 6))).toBe('original payload');
  });

  it('cancels a paused run, which can then be retried either way', async () => {
    const runId = ids.approvalRuns[1];
    await openRun(runId);
    expect(await runStatus()).toBe('PAUSED');
    expect(await enabledActions()).toEqual(ACTIVE_ACTIONS);
    await page.click('#cancel-run');
    await until('STOPPED', async () => (await runStatus()) === 'STOPPED');
    expect(await text('#notice')).toBe('Run cancelled.');
    // A run stopped by hand is retried from the step it stopped at, as a failed one is.
    await untilEnabled('the STOPPED run', FAILED_ACTIONS);
  });

  it('archives a run, which then leaves the list unless archived runs are included', async () => {
    const runId = ids.greeterRuns[0];
    await openRun(runId);
    await page.click('#archive-run');
    await until('archived', async () => (await page.locator('#archive-run').isDisabled()) && (await meta('Archived')) !== '—');
    expect(await text('#notice')).toBe('Run archived.');
    // An archived run is neither retried nor archived again.
    await untilEnabled('the archived run', []);

    await page.click('#back-to-list');
    await applyFilters(() => page.fill('#filters input[name=flowId]', ids.greeter))();
    await untilListed('the archived run left out', (l) => l.length === 4 && !l.includes(runId));
    await applyFilters(async () => {
      await page.fill('#filters input[name=flowId]', ids.greeter);
      await page.check('#filters input[name=includeArchived]');
    })();
    await untilListed('the archived run included', (l) => l.length === 5 && l.includes(runId));
    expect(await text(`#runs-body tr[data-run-id="${runId}"] .archived`)).toBe('archived');
  });

  it('sent nothing anywhere but the gateway, threw no script error, and signs out', async () => {
    expect(requested.filter((u) => !u.startsWith(`${base}/ui`) && !u.startsWith(`${base}/api/v1/`) && u !== `${base}/favicon.ico`)).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.click('#sign-out');
    await until('the sign-in form', () => visible('#sign-in'));
    expect(await page.evaluate('sessionStorage.getItem("flowruns.apiKey")')).toBeNull();
  });
});
