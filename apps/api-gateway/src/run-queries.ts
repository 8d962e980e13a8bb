import { Injectable } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import type { FlowRunWithSteps } from '@flowruns/contracts';
import { sqlRunner } from '@flowruns/database';
import { RunViews, type ListRunsQuery, type RunPage } from '@flowruns/run-views';

/** The read side as the controllers see it: each call runs on its own entity-manager fork. */
@Injectable()
export class RunQueries {
  constructor(private readonly orm: MikroORM) {}

  list(query: ListRunsQuery): Promise<RunPage> {
    return this.views().listRuns(query);
  }

  get(projectId: string, runId: string): Promise<FlowRunWithSteps | null> {
    return this.views().getRun(projectId, runId);
  }

  private views(): RunViews {
    // A fork per call: the global entity manager is never used (allowGlobalContext is off).
    return new RunViews(sqlRunner(this.orm.em.fork()));
  }
}
