import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import type { Logger } from 'pino';
import { z } from 'zod';

/** How an HTTP app shuts down on SIGTERM/SIGINT (every app reads these at bootstrap). */
export const ShutdownConfigSchema = z
  .object({
    SHUTDOWN_DRAIN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600000).default(10000),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(1000).max(900000).default(30000),
  })
  .refine((c) => c.SHUTDOWN_TIMEOUT_MS > c.SHUTDOWN_DRAIN_TIMEOUT_MS, {
    path: ['SHUTDOWN_TIMEOUT_MS'],
    message: 'must be longer than SHUTDOWN_DRAIN_TIMEOUT_MS',
  });
export type ShutdownConfig = z.infer<typeof ShutdownConfigSchema>;

/** What a drain did: how many requests were in flight when it began, and how many it had to cut. */
export interface DrainReport {
  readonly inFlightAtStart: number;
  /** Requests still unanswered at the deadline, whose connections were closed under them. */
  readonly cut: number;
  readonly ms: number;
}

/**
 * Drains a Node HTTP server. `server.close()` alone waits for every connection to end, and a
 * keep-alive connection that a busy client keeps reusing never does, so a process under load
 * would never exit. Draining instead: stop accepting, answer every request already received with
 * `Connection: close` (its client then opens a new connection, which is refused, and goes
 * elsewhere), close connections once they are idle, and at the deadline close whatever is left
 * (`closeAllConnections`).
 *
 * Idle means no request for `idleGraceMs`, not Node's `closeIdleConnections()` (which `close()`
 * also calls): that one destroys a connection between two requests of a client that sends them
 * back to back, and the request already on the wire is then lost without an answer. A connection
 * idle for a while is one its client is not about to use.
 *
 * Construct it before the server listens, so every connection and request is seen.
 */
export class HttpDrain {
  private draining = false;
  private readonly inFlight = new Set<ServerResponse>();
  private readonly connections = new Map<Socket, { active: number; idleSince: number }>();

  constructor(
    private readonly server: Server,
    private readonly idleGraceMs = 250,
  ) {
    server.on('connection', (socket: Socket) => {
      this.connections.set(socket, { active: 0, idleSince: Date.now() });
      socket.once('close', () => this.connections.delete(socket));
    });
    // Before the app's own listener, so the header is set before any handler can send its answer.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.draining) res.setHeader('Connection', 'close');
      const conn = this.connections.get(req.socket);
      if (conn) conn.active++;
      this.inFlight.add(res);
      res.once('close', () => {
        this.inFlight.delete(res);
        if (conn) {
          conn.active--;
          conn.idleSince = Date.now();
        }
      });
    });
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Requests received and not yet answered (or abandoned by their client). */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Resolves once every connection is closed: by itself, or at `deadlineMs` by force. */
  async drain(deadlineMs: number): Promise<DrainReport> {
    const started = Date.now();
    this.draining = true;
    const inFlightAtStart = this.inFlight.size;
    for (const res of this.inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    // Stops accepting, without http.Server's immediate close of the connections idle right now.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(this.server, () => resolve()));
    const sweep = setInterval(() => this.closeIdle(), Math.max(10, Math.min(100, this.idleGraceMs)));
    this.closeIdle();
    let deadline: NodeJS.Timeout | undefined;
    const expired = new Promise<'deadline'>((resolve) => (deadline = setTimeout(() => resolve('deadline'), deadlineMs)));
    try {
      let cut = 0;
      if ((await Promise.race([closed, expired])) === 'deadline') {
        cut = this.inFlight.size;
        this.server.closeAllConnections();
        await closed;
      }
      return { inFlightAtStart, cut, ms: Date.now() - started };
    } finally {
      clearInterval(sweep);
      clearTimeout(deadline);
    }
  }

  private closeIdle(): void {
    const now = Date.now();
    for (const [socket, c] of this.connections) {
      if (c.active === 0 && now - c.idleSince >= this.idleGraceMs) socket.destroy();
    }
  }
}

/**
 * The whole shutdown of an HTTP app, in order: readiness goes false (`onDraining`), the HTTP
 * server drains (in-flight requests finish, up to the drain deadline), then Nest's shutdown hooks
 * run (consumers finish their batch and commit, the relay its batch, the ORM closes).
 */
export async function shutdownHttpApp(
  app: INestApplication,
  drain: HttpDrain,
  opts: { drainTimeoutMs: number; log?: Logger; onDraining?: () => void },
): Promise<void> {
  opts.onDraining?.();
  const report = await drain.drain(opts.drainTimeoutMs);
  if (report.cut > 0) opts.log?.warn({ ...report, drainTimeoutMs: opts.drainTimeoutMs }, 'drain deadline passed; closed the connections of unanswered requests');
  else opts.log?.info(report, 'http drained');
  await app.close();
}

/**
 * Runs `shutdownHttpApp` on the first SIGTERM or SIGINT, then exits: 0 when it finished, 1 when it
 * failed or `timeoutMs` passed first (a hook that hangs must not keep the process up forever).
 * Further signals while it runs are ignored, not left to their default (an immediate kill).
 */
export function exitOnSignals(
  run: (signal: NodeJS.Signals) => Promise<void>,
  opts: { timeoutMs: number; log: Logger; signals?: NodeJS.Signals[] },
): void {
  let started = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (started) {
      opts.log.info({ signal }, 'already shutting down');
      return;
    }
    started = true;
    opts.log.info({ signal, timeoutMs: opts.timeoutMs }, 'shutting down');
    const hard = setTimeout(() => {
      opts.log.error({ signal, timeoutMs: opts.timeoutMs }, 'shutdown deadline passed; exiting with work unfinished');
      process.exit(1);
    }, opts.timeoutMs);
    run(signal).then(
      () => {
        clearTimeout(hard);
        opts.log.info({ signal }, 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        clearTimeout(hard);
        opts.log.error({ err, signal }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  for (const sig of opts.signals ?? ['SIGTERM', 'SIGINT']) process.on(sig, onSignal);
}
