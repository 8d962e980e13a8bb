import { Controller, Get, Module, Req, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

/**
 * The access log's middleware (pino-http under nestjs-pino) is mounted only at a level that writes
 * its lines: at `warn` a request gets no per-request logger (`req.log`), at `info` it does. Each
 * level in a module registry of its own: the root logger is made once per process.
 */
async function reqLogAt(level: string): Promise<string> {
  const previous = process.env.LOG_LEVEL;
  process.env.LOG_LEVEL = level;
  let app: INestApplication | undefined;
  try {
    let loggerModule!: typeof import('./bootstrap').loggerModule;
    jest.isolateModules(() => {
      ({ loggerModule } = require('./bootstrap') as typeof import('./bootstrap'));
    });

    @Controller('probe')
    class ProbeController {
      @Get()
      probe(@Req() req: { log?: unknown }): { log: string } {
        return { log: typeof req.log };
      }
    }
    @Module({ imports: [loggerModule()], controllers: [ProbeController] })
    class ProbeModule {}

    app = await NestFactory.create(ProbeModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const body = (await (await fetch(`${url}/probe`)).json()) as { log: string };
    return body.log;
  } finally {
    await app?.close();
    if (previous === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = previous;
  }
}

describe('the access log', () => {
  it('gives requests no per-request logger when its lines are not written (warn)', async () => {
    await expect(reqLogAt('warn')).resolves.toBe('undefined');
  });

  it('gives each request its logger at info', async () => {
    await expect(reqLogAt('info')).resolves.toBe('object');
  });
});
