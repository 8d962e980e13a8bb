/** A node of a Postgres plan as `explain (format json)` gives it (the fields the tests read). */
export interface PlanNode {
  'Node Type': string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Index Name'?: string;
  'Index Cond'?: string;
  Filter?: string;
  Plans?: PlanNode[];
}

/** The root node of one `explain (format json)` row. */
export const planRoot = (row: unknown): PlanNode => (row as { 'QUERY PLAN': { Plan: PlanNode }[] })['QUERY PLAN'][0].Plan;

/** The plan's nodes that `keep` picks, depth first. */
export function planNodes(node: PlanNode, keep: (n: PlanNode) => boolean): PlanNode[] {
  return [...(keep(node) ? [node] : []), ...(node.Plans ?? []).flatMap((child) => planNodes(child, keep))];
}

/** The plan's index reads (plain, index-only or bitmap). */
export const indexNodes = (node: PlanNode): PlanNode[] => planNodes(node, (n) => n['Index Name'] !== undefined);
/** Every node of that type in the plan. */
export const findNodes = (node: PlanNode, type: string): PlanNode[] => planNodes(node, (n) => n['Node Type'] === type);
export const findNode = (node: PlanNode, type: string): PlanNode | undefined => findNodes(node, type)[0];
