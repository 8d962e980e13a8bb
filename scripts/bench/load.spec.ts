import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { runHttpSchedule, scheduleProcessPid } from './load';

// The fixed-rate load runs in one process kept for the harness's whole run (`http-schedule.ts`).
describe('runHttpSchedule (benchmark harness)', () => {
  let server: Server;
  let base: string;
  const hits = new Map<string, number>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
      // '/fail' fails once warmed up: the warm-up's requests (2 a connection, the URLs in turn) must succeed.
      res.statusCode = req.url === '/fail' && (hits.get('/fail') ?? 0) > 4 ? 500 : 200;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('runs schedule after schedule in one process, each at its rate, errors counted', async () => {
    const one = await runHttpSchedule({ urls: { only: `${base}/a` }, connections: 4, durationS: 1, rate: 100 });
    const pid = scheduleProcessPid();
    expect(pid).toEqual(expect.any(Number));
    // Two URLs on one schedule, taken in turn; one answers 500 to every scheduled request.
    const two = await runHttpSchedule({ urls: { ok: `${base}/b`, fail: `${base}/fail` }, connections: 4, durationS: 1, rate: 100, keepLatencies: true });
    expect(scheduleProcessPid()).toBe(pid);

    expect(one.only.requests).toBe(100);
    expect(one.only.errors).toBe(0);
    expect(one.only.targetRps).toBe(100);
    expect(two.ok.requests).toBe(50);
    expect(two.ok.errors).toBe(0);
    expect(two.ok.latenciesMs).toHaveLength(50);
    expect(two.fail.requests).toBe(0);
    expect(two.fail.errors).toBe(50);
    // The warm-up's requests (2 a connection) come on top of the schedule's.
    expect(hits.get('/a')).toBe(100 + 8);
  });

  it('answers a schedule that cannot run with its error, and runs the next', async () => {
    await expect(runHttpSchedule({ urls: { a: `${base}/a`, b: 'http://127.0.0.2:1/b' }, connections: 1, durationS: 1, rate: 10 })).rejects.toThrow(
      'every URL of a schedule must share one origin',
    );
    const next = await runHttpSchedule({ urls: { only: `${base}/c` }, connections: 2, durationS: 1, rate: 20 });
    expect(next.only.requests).toBe(20);
  });

  it('holds no process open once its schedules are done', async () => {
    const load = path.resolve(__dirname, '../../dist/scripts/bench/load.js');
    const script = `require(${JSON.stringify(load)}).runHttpSchedule({ urls: { only: ${JSON.stringify(`${base}/d`)} }, connections: 2, durationS: 1, rate: 10 })
      .then((r) => console.log(r.only.requests))`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const deadline = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('the process did not exit within 20 s of its schedule'));
      }, 20_000);
      child.on('exit', (c) => {
        clearTimeout(deadline);
        resolve(c);
      });
    });
    expect(code).toBe(0);
    expect(out.trim()).toBe('10');
  });
});
