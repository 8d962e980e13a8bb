import pino, { type Logger } from 'pino';
import { traceFields } from './tracing';

let root: Logger | undefined;

/** The app's name from its entry point (`dist/apps/<name>/src/main.js`), so every line names it. */
const serviceFromEntryPoint = (): string => /apps[\\/]([^\\/]+)[\\/]src[\\/]main/.exec(process.argv[1] ?? '')?.[1] ?? 'flow-runs';

/** The process's root logger: structured JSON on stdout, one child per component, with trace ids. */
export function rootLogger(service?: string): Logger {
  if (!root) {
    root = pino({
      level: process.env.LOG_LEVEL ?? 'info',
      base: { service: service ?? serviceFromEntryPoint(), pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // The active span's traceId/spanId on every line written inside one (see tracing.ts).
      mixin: traceFields,
    });
  }
  return root;
}

export const componentLogger = (component: string): Logger => rootLogger().child({ component });
