import { Migration20261128000000Initial } from './Migration20261128000000Initial';

/** Every migration, in order. Listed explicitly so the same list works from sources and from dist. */
export const MIGRATIONS = [
  { name: 'Migration20261128000000Initial', class: Migration20261128000000Initial },
];
