import { domainError, type CreateFlow, type DomainError, type Flow, type FlowStep } from '@flowruns/contracts';
import { v7 as uuidv7 } from 'uuid';
import type { SqlRunner } from './sql';

/** The step types the engine knows. */
export const STEP_TYPES = ['http', 'transform', 'delay', 'approval', 'subflow', 'fail'] as const;

export interface FlowVersionRecord {
  readonly flowId: string;
  readonly projectId: string;
  readonly flowDisplayName: string;
  readonly tags: readonly string[];
  readonly versionId: string;
  readonly versionDisplayName: string;
  readonly steps: readonly FlowStep[];
}

/** Checks a flow definition; the error names the offending step. */
export function validateSteps(steps: readonly FlowStep[]): DomainError | null {
  const seen = new Set<string>();
  for (const [i, step] of steps.entries()) {
    if (!(STEP_TYPES as readonly string[]).includes(step.type)) {
      return domainError('FLOW_DEFINITION_INVALID', {
        field: `steps[${i}].type`,
        stepName: step.name,
        message: `unknown step type "${step.type}"; known: ${STEP_TYPES.join(', ')}`,
      });
    }
    if (seen.has(step.name)) {
      return domainError('FLOW_DEFINITION_INVALID', {
        field: `steps[${i}].name`,
        stepName: step.name,
        message: `duplicate step name "${step.name}"`,
      });
    }
    seen.add(step.name);
  }
  return null;
}

/** Flows and their published versions (write model of the command service). */
export class FlowStore {
  constructor(private readonly sql: SqlRunner) {}

  async create(input: CreateFlow, now: Date): Promise<Flow | DomainError> {
    const invalid = validateSteps(input.steps);
    if (invalid) return invalid;
    const flowId = uuidv7();
    const versionId = uuidv7();
    await this.sql.execute('insert into projects (id) values (?) on conflict (id) do nothing', [input.projectId]);
    await this.sql.execute(
      `insert into flows (id, project_id, display_name, tags, latest_version_id, created_at, updated_at)
       values (?, ?, ?, ?::text[], ?, ?, ?)`,
      [flowId, input.projectId, input.displayName, toPgArray(input.tags), versionId, now, now],
    );
    await this.sql.execute(
      `insert into flow_versions (id, flow_id, version, display_name, steps, created_at) values (?, ?, 1, ?, ?::jsonb, ?)`,
      [versionId, flowId, input.displayName, JSON.stringify(input.steps), now],
    );
    return {
      id: flowId,
      projectId: input.projectId,
      displayName: input.displayName,
      tags: [...input.tags],
      created: now.toISOString(),
      updated: now.toISOString(),
      version: { id: versionId, version: 1, displayName: input.displayName, steps: input.steps },
    };
  }

  /** The flow's latest published version, only if the flow belongs to the project. */
  async latest(projectId: string, flowId: string): Promise<FlowVersionRecord | null> {
    const rows = await this.sql.execute<{
      id: string;
      project_id: string;
      display_name: string;
      tags: string[];
      version_id: string;
      version_display_name: string;
      steps: FlowStep[];
    }>(
      `select f.id, f.project_id, f.display_name, f.tags, v.id as version_id,
              v.display_name as version_display_name, v.steps
       from flows f join flow_versions v on v.id = f.latest_version_id
       where f.id = ? and f.project_id = ?`,
      [flowId, projectId],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      flowId: r.id,
      projectId: r.project_id,
      flowDisplayName: r.display_name,
      tags: r.tags,
      versionId: r.version_id,
      versionDisplayName: r.version_display_name,
      steps: r.steps,
    };
  }
}

/** A Postgres text[] literal (knex would expand a JS array binding into a list). */
export function toPgArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}
