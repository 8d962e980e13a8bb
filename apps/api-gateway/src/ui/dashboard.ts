import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { componentLogger } from '@flowruns/platform';
import type { Request, Response } from 'express';
import { DASHBOARD_CSS, DASHBOARD_HTML } from './page';

export const DASHBOARD_PATH = '/ui';

/**
 * Self only: the page runs its one script and style sheet and talks to this gateway, nothing
 * else — no inline code, no other origin, no framing. `form-action 'none'`: should the script
 * fail to load, submitting the sign-in form must not put the key into a URL.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS: Record<string, string> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  // Revalidated on every load (express adds an ETag), so a new build shows at once.
  'cache-control': 'no-cache',
};

/**
 * The runs dashboard at `/ui` (`/ui/` too): the page, `/ui/app.css` and `/ui/app.js` — the
 * browser script `app.ts`, compiled by the same `tsc` build next to this file. Plain Express
 * routes like the API docs, not Nest controllers: no API key (the page asks for one and sends it
 * only to `/api/v1`), no rate limit, no Idempotency-Key, and not part of the API document.
 */
export function serveDashboard(app: INestApplication): void {
  const http = app.getHttpAdapter();
  const send = (type: string, body: string) => (_req: Request, res: Response) => {
    res.set({ ...HEADERS, 'content-type': type }).send(body);
  };
  http.get(DASHBOARD_PATH, send('text/html; charset=utf-8', DASHBOARD_HTML));
  http.get(`${DASHBOARD_PATH}/app.css`, send('text/css; charset=utf-8', DASHBOARD_CSS));
  const script = path.join(__dirname, 'app.js');
  if (existsSync(script)) {
    http.get(`${DASHBOARD_PATH}/app.js`, send('text/javascript; charset=utf-8', readFileSync(script, 'utf8')));
  } else {
    // Only when running from the TypeScript sources (in-process tests): `npm run build` emits it.
    componentLogger('dashboard').warn({ script }, 'dashboard script not built; /ui/app.js answers 404');
  }
}
