export * from './flows';
export * from './relay';
export * from './run-store';
export * from './sql';
export * from './run-commands';
