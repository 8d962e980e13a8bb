import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import type { ResumeResult } from '@flowruns/contracts';
import { CommandClient } from './command-client';
import { parseResumeRequestId } from './requests';
import { Trace, type TraceContext } from './traceparent';
import { Idempotent, KeylessApi } from './request-control.module';

/**
 * Resuming a paused run with human input. Deliberately without `ApiKeyGuard`: the request id is
 * the capability (unguessable, single-use, checked by the command service), as in the reference,
 * where whoever got the approval link answers it without an API key. The body, whatever JSON it
 * is, is the input (none is `{}`). Errors pass through, and the command service answers a request
 * id the run did not issue before anything else, with the same 404 `PAUSE_REQUEST_MISMATCH`
 * whether the run does not exist, exists in any status, or waits on another id: without a real
 * request id, a caller learns nothing of the run. Only the holder of an id the run issued hears
 * more: 404 `PAUSE_REQUEST_MISMATCH` with `reason: ALREADY_USED` once it was used, 410
 * `PAUSE_EXPIRED` past the pause's deadline, 409 `INVALID_TRANSITION` (the run's status) once the
 * run stopped waiting on it (cancelled, failed).
 */
@Controller('api/v1/flow-runs/:id/requests/:requestId')
@KeylessApi()
export class ResumeController {
  constructor(private readonly commands: CommandClient) {}

  /** Answers the paused step's output once the command service recorded the resume. */
  @Post('sync')
  @Idempotent()
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
  @Idempotent()
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
