// Prometheus metrics of the service's own domain. HTTP and GraphQL operation metrics come from Yoga's
// Prometheus plugin on the same registry (see app.ts); one registry per app, so tests can build several.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricSources {
  openSubscriptions(): number;
  webSocketConnections(): number;
  tasksByStatus(): { status: string; n: number }[];
}

export class ServiceMetrics {
  readonly registry = new Registry();

  readonly httpRequests = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests served, by route and status code',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });

  readonly upstreamRequests = new Histogram({
    name: 'upstream_request_duration_seconds',
    help: 'Requests to providers, by provider, method and HTTP status (0: no answer)',
    labelNames: ['provider', 'method', 'status'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'upstream_errors_total',
    help: 'Failed requests to providers, by provider and kind (http status, timeout, transport, malformed)',
    labelNames: ['provider', 'kind'] as const,
    registers: [this.registry],
  });

  readonly pollLag = new Histogram({
    name: 'poll_lag_seconds',
    help: 'How late a task was polled after it fell due',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly archiveOutcomes = new Counter({
    name: 'archive_outcomes_total',
    help: 'Result archiving outcomes (archived, failed)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  constructor(sources: MetricSources) {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'graphql_open_subscriptions',
      help: 'Subscriptions open now, over WebSocket and SSE',
      registers: [this.registry],
      collect() { this.set(sources.openSubscriptions()); },
    });
    new Gauge({
      name: 'websocket_connections',
      help: 'WebSocket connections open now',
      registers: [this.registry],
      collect() { this.set(sources.webSocketConnections()); },
    });
    new Gauge({
      name: 'video_tasks',
      help: 'Video tasks in the database, by status',
      labelNames: ['status'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { status, n } of sources.tasksByStatus()) this.set({ status }, n);
      },
    });
  }
}
