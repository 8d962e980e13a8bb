import { timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { INTERNAL_TOKEN_HEADER } from '@flowruns/contracts';
import { EnvelopeException } from '@flowruns/platform';
import { COMMAND_SERVICE_CONFIG, type CommandServiceConfig } from './config';

/** The internal API is for the gateway and the engines only: a shared token, compared in constant time. */
@Injectable()
export class InternalTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(COMMAND_SERVICE_CONFIG) config: CommandServiceConfig) {
    this.expected = Buffer.from(config.INTERNAL_API_TOKEN);
  }

  canActivate(ctx: ExecutionContext): boolean {
    const given = ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers[
      INTERNAL_TOKEN_HEADER
    ];
    const buf = Buffer.from(given ?? '');
    if (buf.length === this.expected.length && timingSafeEqual(buf, this.expected)) return true;
    throw EnvelopeException.of('UNAUTHORIZED', { message: 'internal token missing or wrong' });
  }
}
