export * from './database';
export * from './orm';
export * from './pg-transactions';
export { MIGRATIONS } from './migrations';

/** The projector's tables (the read model): what a rebuild empties. */
export const READ_MODEL_TABLES = ['run_views', 'step_views', 'projection_stalls', 'run_view_purge_ranges'] as const;
export * from './json-param';
export * from './sql-time';
