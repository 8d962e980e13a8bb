export * from './cursor';
export * from './run-views';
