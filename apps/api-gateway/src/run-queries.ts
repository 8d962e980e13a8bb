import { Injectable } from '@nestjs/common';
import type { FlowRunWithSteps } from '@flowruns/contracts';
import { GatewaySql } from './gateway-sql';
import { RunViews, type ListRunsQuery, type RunPage, type RunSelection } from '@flowruns/run-views';

/** The read side as the controllers see it, on the gateway's pg pool. */
@Injectable()
export class RunQueries {
  private readonly views: RunViews;

  constructor(sql: GatewaySql) {
    this.views = new RunViews(sql);
  }

  list(query: ListRunsQuery): Promise<RunPage> {
    return this.views.listRuns(query);
  }

  get(projectId: string, runId: string): Promise<FlowRunWithSteps | null> {
    return this.views.getRun(projectId, runId);
  }

  /**
   * The run once the views hold it, polling until `deadline` (epoch ms); null if they still do not.
   * For a run the write model has and the projector has not applied yet (milliseconds, normally).
   */
  async getWhenProjected(projectId: string, runId: string, deadline: number): Promise<FlowRunWithSteps | null> {
    for (let pauseMs = 5; ; pauseMs = Math.min(pauseMs * 2, 100)) {
      const run = await this.get(projectId, runId);
      if (run || Date.now() + pauseMs > deadline) return run;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  /**
   * Every selected run with its steps, one page of `pageSize` at a time, newest first; the next page
   * is read only when the caller asks for it, so memory stays at one page however many runs match.
   */
  async *exportPages(selection: RunSelection, pageSize: number): AsyncGenerator<FlowRunWithSteps[], void, undefined> {
    for await (const ids of this.views.runIdPages(selection, pageSize)) yield await this.views.getRuns(selection.projectId, ids);
  }
}
