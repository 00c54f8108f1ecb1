// Operations entry: Prometheus metrics and pino connection logs, kept out of the main entries
// so that applications that do not use them do not load prom-client or pino.
export { createMetrics, type MetricsOptions, type ProtocastMetrics } from "./adapters/ops/metrics.js";
export { pinoConnectionLogger } from "./adapters/ops/pino-logger.js";
