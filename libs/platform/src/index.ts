export * from './bootstrap';
export * from './config';
export * from './health';
export * from './logger';
export * from './metrics';
export * from './http-errors';
export * from './internal-client';
export * from './tracing';
