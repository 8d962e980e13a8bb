export * from './errors';
export * from './events';
export * from './status';
export * from './api';
export * from './examples';
export * from './internal';
