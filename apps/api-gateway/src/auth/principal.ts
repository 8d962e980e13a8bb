import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { ApiKeyPrincipal } from '@flowruns/access';
import { EnvelopeException } from '@flowruns/platform';

/** What the auth guard leaves on the request. */
export interface AuthenticatedRequest {
  principal?: ApiKeyPrincipal;
}

/** The API key's principal (`keyId`, `projectId`); only on routes behind `ApiKeyGuard`. */
export const Principal = createParamDecorator((_: unknown, ctx: ExecutionContext): ApiKeyPrincipal => {
  const principal = ctx.switchToHttp().getRequest<AuthenticatedRequest>().principal;
  // A route that forgot the guard must fail closed, not run without a project.
  if (!principal) throw EnvelopeException.of('UNAUTHORIZED', { message: 'API key required' });
  return principal;
});

/**
 * A key sees only its own project. Another project answers exactly like a project that does not
 * exist, so a key cannot probe which project ids are real.
 */
export function assertOwnProject(principal: ApiKeyPrincipal, projectId: string): void {
  if (projectId !== principal.projectId) {
    throw EnvelopeException.of('ENTITY_NOT_FOUND', {
      entityType: 'project',
      entityId: projectId,
      message: 'Project not found',
    });
  }
}
