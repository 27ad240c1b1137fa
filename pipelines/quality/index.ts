export * from './suite.ts';
export * from './compile.ts';
export * from './schema.ts';
export * from './gate.ts';
export * from './anomaly.ts';
export { qualityDialect, type QualityDialect } from './dialect.ts';
