import { z } from 'zod';
import type { JsonSchema, ParameterObject } from './document-types';

/**
 * zod → JSON Schema for the OpenAPI document, so the document says exactly what validation does.
 *
 * `io` decides which side of a schema is shown. Requests are shown on their `input` side: what a
 * client may send, before defaults fill in and transforms run (`limit` is the query string `"10"`,
 * not the number the handler sees; a field with a default is optional). Answers are shown on their
 * `output` side, what the gateway serialises. `.refine` checks cannot be expressed in JSON Schema
 * and are left out by zod; the prose of the parameter says them where a client needs to know.
 */
export type Io = 'input' | 'output';

export const componentRef = (id: string): JsonSchema => ({ $ref: `#/components/schemas/${id}` });

/** One schema inline (a parameter's, a header's). */
export function jsonSchemaOf(schema: z.ZodType, io: Io): JsonSchema {
  return withoutDialect(z.toJSONSchema(schema, { io }) as JsonSchema);
}

/**
 * Named schemas as `components.schemas`. Converted as one registry, so a named schema nested in
 * another (a `FlowRun` in a page of runs) becomes a `$ref` to its component, not a second copy.
 */
export function componentSchemas(named: Readonly<Record<string, z.ZodType>>, io: Io): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(Object.entries(schemas).map(([id, s]) => [id, withoutDialect(s as JsonSchema)]));
}

/**
 * The fields of an object schema as parameters of one location. Arrays are repeatable parameters
 * (`status=A&status=B`: form style, exploded).
 */
export function parametersOf(
  schema: z.ZodObject,
  location: 'query' | 'header',
  descriptions: Readonly<Record<string, string>>,
): ParameterObject[] {
  const json = jsonSchemaOf(schema, 'input') as { properties: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties).map(([name, s]) => ({
    name,
    in: location,
    required: json.required?.includes(name) ?? false,
    ...(descriptions[name] ? { description: descriptions[name] } : {}),
    schema: s,
    ...(s.type === 'array' ? { style: 'form' as const, explode: true } : {}),
  }));
}

/** `$schema` and `$id` belong to standalone JSON Schema documents, not to schemas inside OpenAPI. */
function withoutDialect({ $schema: _schema, $id: _id, ...rest }: JsonSchema): JsonSchema {
  return rest;
}
