import { Body, Controller, Headers, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import {
  CreateFlowSchema,
  FailRunRequestSchema,
  FinishStepRequestSchema,
  PauseRunRequestSchema,
  StartStepRequestSchema,
  TRACEPARENT_HEADER,
  TriggerRunRequestSchema,
} from '@flowruns/contracts';
import { orThrow, parseOrThrow } from '@flowruns/platform';
import { FlowStore, RunCommands } from '@flowruns/write-model';
import { MikroORM } from '@mikro-orm/postgresql';
import { sqlRunner } from '@flowruns/database';
import { InternalTokenGuard } from './internal-token.guard';

/** The internal, token-protected command API: the gateway and engines send every change here. */
@Controller('internal')
@UseGuards(InternalTokenGuard)
export class RunsController {
  constructor(
    private readonly commands: RunCommands,
    private readonly orm: MikroORM,
  ) {}

  @Post('flows')
  async createFlow(@Body() body: unknown) {
    const input = parseOrThrow(CreateFlowSchema, body);
    const em = this.orm.em.fork();
    return orThrow(await em.transactional((tem) => new FlowStore(sqlRunner(tem)).create(input, new Date())));
  }

  @Post('flows/:flowId/runs')
  async trigger(@Param('flowId') flowId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const req = parseOrThrow(TriggerRunRequestSchema, body);
    return orThrow(await this.commands.trigger(flowId, req, { traceparent: tp }));
  }

  @Post('runs/:runId/steps/:stepName/start')
  @HttpCode(200)
  async startStep(
    @Param('runId') runId: string,
    @Param('stepName') stepName: string,
    @Body() body: unknown,
    @Headers(TRACEPARENT_HEADER) tp?: string,
  ) {
    const { stepType } = parseOrThrow(StartStepRequestSchema, body);
    return orThrow(await this.commands.startStep(runId, stepName, stepType, { traceparent: tp }));
  }

  @Post('runs/:runId/steps/:stepName/finish')
  @HttpCode(200)
  async finishStep(
    @Param('runId') runId: string,
    @Param('stepName') stepName: string,
    @Body() body: unknown,
    @Headers(TRACEPARENT_HEADER) tp?: string,
  ) {
    const req = parseOrThrow(FinishStepRequestSchema, body);
    return orThrow(await this.commands.finishStep(runId, stepName, req, { traceparent: tp }));
  }

  @Post('runs/:runId/pause')
  @HttpCode(200)
  async pause(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const req = parseOrThrow(PauseRunRequestSchema, body);
    return orThrow(await this.commands.pause(runId, req.stepName, req.resumeDeadline, { traceparent: tp }));
  }

  @Post('runs/:runId/succeed')
  @HttpCode(200)
  async succeed(@Param('runId') runId: string, @Headers(TRACEPARENT_HEADER) tp?: string) {
    return orThrow(await this.commands.succeed(runId, { traceparent: tp }));
  }

  @Post('runs/:runId/fail')
  @HttpCode(200)
  async fail(@Param('runId') runId: string, @Body() body: unknown, @Headers(TRACEPARENT_HEADER) tp?: string) {
    const req = parseOrThrow(FailRunRequestSchema, body ?? {});
    return orThrow(await this.commands.fail(runId, req.failedStepName, { traceparent: tp }));
  }
}
