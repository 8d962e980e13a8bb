import { startTestGateway, type TestGateway } from '../gateway.spec-helpers';
import { DASHBOARD_CSP } from './dashboard';

/**
 * The runs dashboard's server side: the page is served without a key, under a self-only
 * Content-Security-Policy, with nothing inline; `GET /api/v1/me` tells a key's project. The page
 * in a browser is `test/e2e/dashboard.e2e.spec.ts`.
 */
describe('the runs dashboard (/ui) and GET /api/v1/me', () => {
  let gw: TestGateway;
  let key: string;

  beforeAll(async () => {
    gw = await startTestGateway();
    key = await gw.createKey('proj_ui', 'key_ui');
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('serves the page at /ui and /ui/ without an API key, under a self-only CSP and with nothing inline', async () => {
    for (const path of ['/ui', '/ui/']) {
      const r = await fetch(`${gw.base}${path}`);
      expect({ path, status: r.status }).toEqual({ path, status: 200 });
      expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(r.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await r.text();
      expect(html).toContain('<script src="/ui/app.js" defer></script>');
      // The CSP allows no inline script, handler or style; the page has none.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/\s(on[a-z]+|style)=/i);
    }
    expect(DASHBOARD_CSP).toContain("default-src 'none'");
    expect(DASHBOARD_CSP).toContain("connect-src 'self'");
    expect(DASHBOARD_CSP).not.toMatch(/unsafe|\*|https?:/);
  });

  it('serves the style sheet; other paths under /ui are the usual 404 envelope', async () => {
    const css = await fetch(`${gw.base}/ui/app.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(css.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    const missing = await gw.call('GET', '/ui/app.ts');
    expect(missing).toMatchObject({ status: 404, body: { code: 'ENTITY_NOT_FOUND' } });
    expect(await gw.call('GET', '/ui/dashboard.js')).toMatchObject({ status: 404, body: { code: 'ENTITY_NOT_FOUND' } });
  });

  it("answers GET /api/v1/me with the key's project and id, and 401 without a key", async () => {
    expect(await gw.call('GET', '/api/v1/me', { key })).toMatchObject({ status: 200, body: { projectId: 'proj_ui', keyId: 'key_ui' } });
    expect(await gw.call('GET', '/api/v1/me', { key: null })).toMatchObject({ status: 401, body: { statusCode: 401, code: 'UNAUTHORIZED' } });
    expect(gw.fake.received).toEqual([]);
  });
});
