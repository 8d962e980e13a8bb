export * from './templates';
export * from './steps';
export * from './command-port';
export * from './http-command-client';
export * from './run-driver';
export * from './subflow-completion';
export * from './report-batcher';
