import { Controller, Get } from '@nestjs/common';
import type { ApiKeyPrincipal } from '@flowruns/access';
import { Principal } from './auth/principal';
import { KeyedApi } from './request-control.module';

/**
 * Who the calling API key is: its id and its project. A client that holds only the key (the runs
 * dashboard) learns from it which `projectId` to send. Both are already visible to the key's
 * holder (a run it triggers carries `projectId`, and the key id as `triggeredBy`).
 */
@Controller('api/v1/me')
@KeyedApi()
export class MeController {
  @Get()
  async me(@Principal() principal: ApiKeyPrincipal): Promise<{ projectId: string; keyId: string }> {
    return { projectId: principal.projectId, keyId: principal.keyId };
  }
}
