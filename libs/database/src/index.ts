export * from './database';
export * from './orm';
