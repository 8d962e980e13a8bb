export type { Admin, Kafka } from 'kafkajs';
export * from './kafka';
export * from './ports';
export * from './resilient-consumer';
export * from './partitioner';
