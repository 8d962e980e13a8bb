export * from './flows';
export * from './leases';
export * from './relay';
export * from './run-rules';
export * from './run-store';
export * from './sql';
export * from './run-commands';
export * from './supervisor';
