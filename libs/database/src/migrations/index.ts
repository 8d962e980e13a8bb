import { Migration20261128000000Initial } from './Migration20261128000000Initial';
import { Migration20261128140000RunControl } from './Migration20261128140000RunControl';
import { Migration20261128180000BulkSelection } from './Migration20261128180000BulkSelection';
import { Migration20261128190000Retention } from './Migration20261128190000Retention';
import { Migration20261129000000IdempotencyKeys } from './Migration20261129000000IdempotencyKeys';
import { Migration20261129120000Fillfactor } from './Migration20261129120000Fillfactor';
import { Migration20261129150000StallReason } from './Migration20261129150000StallReason';
import { Migration20261129170000OutboxQueue } from './Migration20261129170000OutboxQueue';
import { Migration20261129210000ActiveListIndexes } from './Migration20261129210000ActiveListIndexes';
import { Migration20261130000000ArchivedListIndexes } from './Migration20261130000000ArchivedListIndexes';
import { Migration20261130120000RetentionKeyset } from './Migration20261130120000RetentionKeyset';
import { Migration20261201000000StreamFillfactor } from './Migration20261201000000StreamFillfactor';
import { Migration20261202000000RetentionRanges } from './Migration20261202000000RetentionRanges';
import { Migration20261203000000EventIdNotIndexed } from './Migration20261203000000EventIdNotIndexed';
import { Migration20261204000000StreamProjectKey } from './Migration20261204000000StreamProjectKey';

/** Every migration, in order. Listed explicitly so the same list works from sources and from dist. */
export const MIGRATIONS = [
  { name: 'Migration20261128000000Initial', class: Migration20261128000000Initial },
  { name: 'Migration20261128140000RunControl', class: Migration20261128140000RunControl },
  { name: 'Migration20261128180000BulkSelection', class: Migration20261128180000BulkSelection },
  { name: 'Migration20261128190000Retention', class: Migration20261128190000Retention },
  { name: 'Migration20261129000000IdempotencyKeys', class: Migration20261129000000IdempotencyKeys },
  { name: 'Migration20261129120000Fillfactor', class: Migration20261129120000Fillfactor },
  { name: 'Migration20261129150000StallReason', class: Migration20261129150000StallReason },
  { name: 'Migration20261129170000OutboxQueue', class: Migration20261129170000OutboxQueue },
  { name: 'Migration20261129210000ActiveListIndexes', class: Migration20261129210000ActiveListIndexes },
  { name: 'Migration20261130000000ArchivedListIndexes', class: Migration20261130000000ArchivedListIndexes },
  { name: 'Migration20261130120000RetentionKeyset', class: Migration20261130120000RetentionKeyset },
  { name: 'Migration20261201000000StreamFillfactor', class: Migration20261201000000StreamFillfactor },
  { name: 'Migration20261202000000RetentionRanges', class: Migration20261202000000RetentionRanges },
  { name: 'Migration20261203000000EventIdNotIndexed', class: Migration20261203000000EventIdNotIndexed },
  { name: 'Migration20261204000000StreamProjectKey', class: Migration20261204000000StreamProjectKey },
];
