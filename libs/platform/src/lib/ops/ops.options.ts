import type { AwsEnv } from '../config/config.schemas';

/** A dependency the health check probes. */
export type HealthDependency = 'postgres' | 'redis' | 'sqs' | 'ses';

export interface OpsOptions {
  /** Added to every metric as the `app` label. */
  app: string;
  dependencies: readonly HealthDependency[];
  aws: AwsEnv;
  /** Queue (name or URL) the SQS probe resolves. */
  probeQueue: string;
  /** Serve `/health` and `/metrics` on this port from a plain HTTP server (worker, scheduler). */
  port?: number;
  /** Per-probe timeout. */
  probeTimeoutMs?: number;
  /** Configured secret values, hidden in the (unauthenticated) health answer's error messages. */
  secrets?: readonly string[];
}

export const OPS_OPTIONS = Symbol('OPS_OPTIONS');
/** The app's prom-client Registry (one per app, so several apps can share a process in tests). */
export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');
