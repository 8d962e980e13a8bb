import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import type { ResumeResult } from '@flowruns/contracts';
import { CommandClient } from './command-client';
import { parseResumeRequestId } from './requests';
import { Trace, type TraceContext } from './traceparent';

/**
 * Resuming a paused run with human input. Deliberately without `ApiKeyGuard`: the request id is
 * the capability (unguessable, single-use, checked by the command service), as in the reference,
 * where whoever got the approval link answers it without an API key. The body, whatever JSON it
 * is, is the input (none is `{}`). Errors pass through: 409 not paused, 404 unknown or used id,
 * 410 expired.
 */
@Controller('api/v1/flow-runs/:id/requests/:requestId')
export class ResumeController {
  constructor(private readonly commands: CommandClient) {}

  /** Answers the paused step's output once the command service recorded the resume. */
  @Post('sync')
  @HttpCode(200)
  sync(
    @Param('id') id: string,
    @Param('requestId') requestId: string,
    @Body() body: unknown,
    @Trace() trace: TraceContext,
  ): Promise<ResumeResult> {
    return this.resume(id, requestId, body, trace);
  }

  /**
   * The same single internal call, answered 202 as soon as the command service accepted it: the
   * rest of the run is executed by a worker, and this request never waits for it.
   */
  @Post()
  @HttpCode(202)
  async accept(
    @Param('id') id: string,
    @Param('requestId') requestId: string,
    @Body() body: unknown,
    @Trace() trace: TraceContext,
  ): Promise<{ accepted: true }> {
    await this.resume(id, requestId, body, trace);
    return { accepted: true };
  }

  private resume(id: string, requestId: string, body: unknown, trace: TraceContext): Promise<ResumeResult> {
    return this.commands.resumeRun(id, { requestId: parseResumeRequestId(requestId), body: body === undefined ? {} : body }, trace);
  }
}
