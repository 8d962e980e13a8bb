/**
 * The slice of OpenAPI 3.1 this gateway's document uses. Our own types rather than
 * `@nestjs/swagger`'s, which describe OpenAPI 3.0 schemas (`nullable`, a single `type`) and would
 * not accept the JSON Schema 2020-12 that `z.toJSONSchema` emits and OpenAPI 3.1 takes as it is.
 */

/** A JSON Schema (2020-12) object, as `z.toJSONSchema` produces it, or a `$ref` to a component. */
export type JsonSchema = Record<string, unknown>;

export type HttpMethod = 'get' | 'post';

export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  description?: string;
  schema: JsonSchema;
  style?: 'form' | 'simple';
  explode?: boolean;
}

export interface ExampleObject {
  summary?: string;
  value: unknown;
}

export interface MediaTypeObject {
  schema: JsonSchema;
  example?: unknown;
  examples?: Record<string, ExampleObject>;
}

export interface HeaderObject {
  description: string;
  schema: JsonSchema;
}

export interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject>;
  content?: Record<string, MediaTypeObject>;
}

export interface RequestBodyObject {
  description?: string;
  required: boolean;
  content: Record<string, MediaTypeObject>;
}

export interface OperationObject {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** `[]` for the routes without an API key; absent means the document's default (bearer key). */
  security?: Record<string, string[]>[];
  parameters: ParameterObject[];
  requestBody?: RequestBodyObject;
  responses: Record<string, ResponseObject>;
}

export type PathItemObject = Partial<Record<HttpMethod, OperationObject>>;

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  tags: { name: string; description: string }[];
  security: Record<string, string[]>[];
  paths: Record<string, PathItemObject>;
  components: {
    schemas: Record<string, JsonSchema>;
    securitySchemes: Record<string, { type: 'http'; scheme: 'bearer'; bearerFormat: string; description: string }>;
  };
}
