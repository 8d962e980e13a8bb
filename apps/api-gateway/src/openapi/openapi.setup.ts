import type { INestApplication } from '@nestjs/common';
import { SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { buildOpenApiDocument } from './openapi';

export const DOCS_PATH = 'api/docs';
export const DOCS_JSON_PATH = 'api/docs-json';

/**
 * Serves the document: Swagger UI at `/api/docs`, the JSON at `/api/docs-json`. Plain Express
 * routes registered by `SwaggerModule`, not Nest controllers, so no guard or interceptor runs:
 * no API key, no rate limit, and they are not routes of the API they describe. Built once, at boot.
 */
export function serveOpenApi(app: INestApplication): void {
  // The cast: @nestjs/swagger types describe OpenAPI 3.0; Swagger UI renders our 3.1 document as it is.
  const document = buildOpenApiDocument() as unknown as OpenAPIObject;
  SwaggerModule.setup(DOCS_PATH, app, document, {
    jsonDocumentUrl: DOCS_JSON_PATH,
    raw: ['json'],
    customSiteTitle: 'Flow Runs API',
  });
}
