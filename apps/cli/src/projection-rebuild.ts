import { READ_MODEL_TABLES } from '@flowruns/database';
import type { Admin } from '@flowruns/messaging';

export interface RebuildTarget {
  readonly admin: Admin;
  readonly groupId: string;
  readonly topic: string;
  /** Runs SQL on the read model's database. */
  readonly execute: (sql: string) => Promise<unknown>;
}

/**
 * Prepares a rebuild of the views from the beginning of the topic: refuses while a projector is in
 * the group (its offsets cannot be moved under it), moves the group's offsets back to the earliest
 * event, then empties the read model. In that order: if emptying failed after the reset, the
 * projector would replay into the old rows, which it skips as duplicates; the other way round a
 * failed reset would leave empty views that never fill. The next projector start replays everything.
 */
export async function prepareRebuild(t: RebuildTarget): Promise<{ events: number }> {
  const [group] = (await t.admin.describeGroups([t.groupId])).groups;
  if (group && group.members.length > 0) {
    throw new Error(`consumer group ${t.groupId} has ${group.members.length} active member(s): stop every projector first`);
  }
  const offsets = await t.admin.fetchTopicOffsets(t.topic);
  // A group that never committed has nothing to move: a new projector starts from the beginning anyway.
  if (group && group.state !== 'Dead') await t.admin.resetOffsets({ groupId: t.groupId, topic: t.topic, earliest: true });
  await t.execute(`truncate ${READ_MODEL_TABLES.join(', ')}`);
  return { events: offsets.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0) };
}
