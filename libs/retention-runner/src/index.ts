export * from './retention-client';
export * from './run-retention';
export * from './config';
