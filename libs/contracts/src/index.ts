export * from './errors';
export * from './events';
export * from './status';
export * from './api';
export * from './internal';
export * from './dead-letter';
export * from './text';
