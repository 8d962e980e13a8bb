import { EXCEPTION_FILTERS_METADATA, GUARDS_METADATA, INTERCEPTORS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { RequestMethod, type Type } from '@nestjs/common';
import { ApiKeyGuard } from './auth/api-key.guard';
import { loadGatewayConfig } from './config';
import { GatewayModule } from './gateway.module';
import { IdempotencyGuard, IdempotentReplayFilter } from './idempotency/idempotency.guard';
import { RateLimitGuard } from './rate-limit/rate-limit.guard';
import { ResumeController } from './resume.controller';

/**
 * The rate limit and `Idempotency-Key` are bound per controller and per POST route rather than
 * globally (`request-control.module.ts`), so a route added without them would silently go
 * unlimited or lose its replays. This walks every route of the gateway's module.
 */
const controllers = (): Type<unknown>[] => {
  const config = loadGatewayConfig({
    DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/unused',
    KAFKA_BROKERS: '127.0.0.1:9092',
    COMMAND_SERVICE_URL: 'http://127.0.0.1:1',
    INTERNAL_API_TOKEN: 'test-internal-token-0123456789',
  });
  return (GatewayModule.forRoot(config).controllers ?? []) as Type<unknown>[];
};

const routesOf = (controller: Type<unknown>) => {
  const proto = controller.prototype as Record<string, unknown>;
  return Object.getOwnPropertyNames(proto)
    .filter((name) => name !== 'constructor' && typeof proto[name] === 'function' && Reflect.getMetadata(PATH_METADATA, proto[name] as object) !== undefined)
    .map((name) => {
      const handler = proto[name] as object;
      return {
        name: `${controller.name}.${name}`,
        method: Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod,
        guards: [...((Reflect.getMetadata(GUARDS_METADATA, controller) as unknown[]) ?? []), ...((Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[]) ?? [])],
        filters: [
          ...((Reflect.getMetadata(EXCEPTION_FILTERS_METADATA, controller) as unknown[]) ?? []),
          ...((Reflect.getMetadata(EXCEPTION_FILTERS_METADATA, handler) as unknown[]) ?? []),
        ],
        interceptors: [
          ...((Reflect.getMetadata(INTERCEPTORS_METADATA, controller) as unknown[]) ?? []),
          ...((Reflect.getMetadata(INTERCEPTORS_METADATA, handler) as unknown[]) ?? []),
        ],
      };
    });
};

describe('request control on every public route', () => {
  const routes = controllers().flatMap(routesOf);

  it('finds the routes (the walk itself works)', () => {
    expect(routes.length).toBeGreaterThanOrEqual(15);
    expect(routes.filter((r) => r.method === RequestMethod.POST).length).toBeGreaterThanOrEqual(10);
  });

  it('limits every route, after the API key where the route takes one, and takes Idempotency-Key on every POST after both', () => {
    for (const r of routes) {
      const keyless = r.name.startsWith(`${ResumeController.name}.`);
      const idempotent = r.method === RequestMethod.POST ? [IdempotencyGuard] : [];
      expect({ route: r.name, guards: r.guards }).toEqual({ route: r.name, guards: [...(keyless ? [RateLimitGuard] : [ApiKeyGuard, RateLimitGuard]), ...idempotent] });
      expect({ route: r.name, filters: r.filters }).toEqual({ route: r.name, filters: r.method === RequestMethod.POST ? [IdempotentReplayFilter] : [] });
    }
  });

  it('puts no route through an interceptor (Nest binds two AsyncResources per request for one)', () => {
    for (const r of routes) expect({ route: r.name, interceptors: r.interceptors }).toEqual({ route: r.name, interceptors: [] });
  });
});
