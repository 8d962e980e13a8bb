import {
  domainError,
  type CreateFlow,
  type DomainError,
  type Flow,
  type FlowStep,
  type PublishFlowVersion,
} from '@flowruns/contracts';
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
  /** The project's monthly run quota (null: none), read with the flow so a trigger needs no second query. */
  readonly monthlyRunQuota: number | null;
}

const TEMPLATE = /\{\{\s*(.*?)\s*\}\}/g;
const STEP_REF = /^steps\.([A-Za-z0-9_-]+)/;

/** Every string inside a settings value, with its path (`headers.auth`, `body.items.0`). */
function* stringsIn(value: unknown, path: string): Generator<readonly [string, string]> {
  if (typeof value === 'string') {
    yield [path, value];
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) yield* stringsIn(v, `${path}.${i}`);
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) yield* stringsIn(v, `${path}.${k}`);
  }
}

/**
 * Checks a flow definition; the error names the offending step. Besides types and unique names,
 * every `{{steps.<name>...}}` template must name a step that comes earlier in the list (only those
 * have an output when the step runs); `{{trigger...}}` is always available.
 */
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
    for (const [path, text] of stringsIn(step.settings ?? {}, `steps[${i}].settings`)) {
      for (const m of text.matchAll(TEMPLATE)) {
        const expr = m[1];
        if (!expr.startsWith('steps.') && expr !== 'steps') continue;
        const referenced = STEP_REF.exec(expr)?.[1] ?? null;
        if (referenced !== null && seen.has(referenced)) continue;
        return domainError('FLOW_DEFINITION_INVALID', {
          field: path,
          stepName: step.name,
          referencedStep: referenced,
          message:
            referenced === null
              ? `template "{{${expr}}}" in step "${step.name}" does not name a step`
              : `template "{{${expr}}}" in step "${step.name}" names step "${referenced}", which does not come before it`,
        });
      }
    }
    seen.add(step.name);
  }
  return null;
}

interface FlowRow {
  id: string;
  project_id: string;
  display_name: string;
  tags: string[];
  created_at: Date | string;
  updated_at: Date | string;
  version_id: string;
  version: number;
  version_display_name: string;
  steps: FlowStep[];
}

const iso = (d: Date | string): string => (d instanceof Date ? d : new Date(d)).toISOString();

const toFlow = (r: FlowRow): Flow => ({
  id: r.id,
  projectId: r.project_id,
  displayName: r.display_name,
  tags: r.tags,
  created: iso(r.created_at),
  updated: iso(r.updated_at),
  version: { id: r.version_id, version: r.version, displayName: r.version_display_name, steps: r.steps },
});

const FLOW_SELECT = `select f.id, f.project_id, f.display_name, f.tags, f.created_at, f.updated_at, v.id as version_id,
         v.version, v.display_name as version_display_name, v.steps
  from flows f join flow_versions v on v.id = f.latest_version_id`;

const flowNotFound = (flowId: string): DomainError =>
  domainError('ENTITY_NOT_FOUND', { entityType: 'flow', entityId: flowId, message: 'Flow not found' });

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

  /**
   * Publishes a new version and makes it the latest; `displayName` (if given) renames the flow and
   * names the version. The flow row is locked so that concurrent publishes number versions in turn.
   */
  async publish(flowId: string, input: PublishFlowVersion, now: Date): Promise<Flow | DomainError> {
    const rows = await this.sql.execute<{ display_name: string; max_version: number }>(
      `select f.display_name, (select max(version) from flow_versions v where v.flow_id = f.id)::int as max_version
       from flows f where f.id = ? and f.project_id = ? for update of f`,
      [flowId, input.projectId],
    );
    const flow = rows[0];
    if (!flow) return flowNotFound(flowId);
    const invalid = validateSteps(input.steps);
    if (invalid) return invalid;
    const versionId = uuidv7();
    const displayName = input.displayName ?? flow.display_name;
    await this.sql.execute(
      `insert into flow_versions (id, flow_id, version, display_name, steps, created_at) values (?, ?, ?, ?, ?::jsonb, ?)`,
      [versionId, flowId, (flow.max_version ?? 0) + 1, displayName, JSON.stringify(input.steps), now],
    );
    await this.sql.execute('update flows set latest_version_id = ?, display_name = ?, updated_at = ? where id = ?', [
      versionId,
      displayName,
      now,
      flowId,
    ]);
    return (await this.get(input.projectId, flowId)) ?? flowNotFound(flowId);
  }

  /** A flow with its latest version, only if it belongs to the project. */
  async get(projectId: string, flowId: string): Promise<Flow | null> {
    const rows = await this.sql.execute<FlowRow>(`${FLOW_SELECT} where f.id = ? and f.project_id = ?`, [flowId, projectId]);
    return rows[0] ? toFlow(rows[0]) : null;
  }

  /** The project's flows with their latest versions, newest first. */
  async list(projectId: string): Promise<Flow[]> {
    const rows = await this.sql.execute<FlowRow>(
      `${FLOW_SELECT} where f.project_id = ? order by f.created_at desc, f.id desc`,
      [projectId],
    );
    return rows.map(toFlow);
  }

  /** The flow's latest published version, only if the flow belongs to the project. */
  async latest(projectId: string, flowId: string): Promise<FlowVersionRecord | null> {
    const rows = await this.sql.execute<LatestRow>(
      `select q.*, (select monthly_run_quota from projects p where p.id = q.project_id) as monthly_run_quota
         from (${FLOW_SELECT} where f.id = ? and f.project_id = ?) q`,
      [flowId, projectId],
    );
    return rows[0] ? toVersionRecord(rows[0]) : null;
  }

  /**
   * `latest` for many flows in one statement (a batch of triggers: one read and one plan instead
   * of one per trigger), keyed by `latestKey`; a flow is left out unless it belongs to the project it
   * was asked with.
   */
  async latestMany(wanted: readonly { readonly projectId: string; readonly flowId: string }[]): Promise<Map<string, FlowVersionRecord>> {
    const out = new Map<string, FlowVersionRecord>();
    if (wanted.length === 0) return out;
    const rows = await this.sql.execute<LatestRow>(
      `select q.*, (select monthly_run_quota from projects p where p.id = q.project_id) as monthly_run_quota
         from (${FLOW_SELECT} where f.id in (?)) q`,
      [[...new Set(wanted.map((w) => w.flowId))]],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const w of wanted) {
      const r = byId.get(w.flowId);
      if (r && r.project_id === w.projectId) out.set(latestKey(w.projectId, w.flowId), toVersionRecord(r));
    }
    return out;
  }

  /** The steps of one version (what an engine executes). */
  async versionSteps(versionId: string): Promise<FlowStep[] | null> {
    const rows = await this.sql.execute<{ steps: FlowStep[] }>('select steps from flow_versions where id = ?', [versionId]);
    return rows[0]?.steps ?? null;
  }
}

/** The key of `latestMany`'s answer for one (project, flow). */
export const latestKey = (projectId: string, flowId: string): string => `${projectId}\u0000${flowId}`;

type LatestRow = FlowRow & { monthly_run_quota: number | null };

const toVersionRecord = (r: LatestRow): FlowVersionRecord => ({
  flowId: r.id,
  projectId: r.project_id,
  flowDisplayName: r.display_name,
  tags: r.tags,
  versionId: r.version_id,
  versionDisplayName: r.version_display_name,
  steps: r.steps,
  monthlyRunQuota: r.monthly_run_quota,
});

/** A Postgres text[] literal (knex would expand a JS array binding into a list). */
export function toPgArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}
