// Fault switches: the ways a real upstream misbehaves, on demand, so that the service's retry,
// timeout and recovery paths can be exercised without a network.
export interface SandboxFaults {
  latencyMs: number;
  errorRate: { create: number; query: number; media: number };
  errorStatuses: number[];
  malformedRate: number;
  dropRate: number;
  failRate: number;
}

/** What setFaults and the control route accept: any subset, `errorRate` included. */
export type FaultPatch = Partial<Omit<SandboxFaults, 'errorRate'>> & { errorRate?: Partial<SandboxFaults['errorRate']> };

export type FaultKind = 'create' | 'query' | 'media';
export type QueuedErrorKind = 'create' | 'query' | 'any';

export type FaultDecision =
  | { action: 'drop' }
  | { action: 'error'; status: number; retryAfterSeconds?: number }
  | { action: 'answer'; malformed: boolean };

export const DEFAULT_FAULTS: SandboxFaults = {
  latencyMs: 0,
  errorRate: { create: 0, query: 0, media: 0 },
  errorStatuses: [500, 502, 503],
  malformedRate: 0,
  dropRate: 0,
  failRate: 0,
};

interface QueuedErrors {
  kind: QueuedErrorKind;
  status: number;
  remaining: number;
  retryAfterSeconds?: number;
}

export class FaultSwitches {
  private faults: SandboxFaults = structuredClone(DEFAULT_FAULTS);
  private readonly queue: QueuedErrors[] = [];

  constructor(private readonly random: () => number, initial: FaultPatch = {}) {
    this.update(initial);
  }

  update(patch: FaultPatch): void {
    const { errorRate, ...rest } = patch;
    const defined = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined));
    const rates = Object.fromEntries(Object.entries(errorRate ?? {}).filter(([, value]) => value !== undefined));
    this.faults = { ...this.faults, ...defined, errorRate: { ...this.faults.errorRate, ...rates } };
  }

  current(): SandboxFaults {
    return structuredClone(this.faults);
  }

  get latencyMs(): number {
    return this.faults.latencyMs;
  }

  get failRate(): number {
    return this.faults.failRate;
  }

  queueErrors(kind: QueuedErrorKind, status: number, count: number, retryAfterSeconds?: number): void {
    if (count <= 0) return;
    this.queue.push({ kind, status, remaining: count, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });
  }

  /**
   * The fate of one request, in the documented order: drop, queued errors, error rate, then a normal
   * answer (possibly malformed). Media downloads only take the error rate: a dropped or truncated
   * download is already covered by the error statuses, and 'any' queues are for the API calls.
   */
  decide(kind: FaultKind): FaultDecision {
    if (kind !== 'media' && this.chance(this.faults.dropRate)) return { action: 'drop' };
    if (kind !== 'media') {
      const queued = this.takeQueued(kind);
      if (queued) return queued;
    }
    if (this.chance(this.faults.errorRate[kind])) return { action: 'error', status: this.pickStatus() };
    return { action: 'answer', malformed: kind !== 'media' && this.chance(this.faults.malformedRate) };
  }

  private takeQueued(kind: 'create' | 'query'): FaultDecision | null {
    const index = this.queue.findIndex((entry) => entry.kind === kind || entry.kind === 'any');
    const entry = this.queue[index];
    if (!entry) return null;
    entry.remaining -= 1;
    if (entry.remaining <= 0) this.queue.splice(index, 1);
    return {
      action: 'error',
      status: entry.status,
      ...(entry.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: entry.retryAfterSeconds }),
    };
  }

  // No draw when a rate is 0, so that a seeded generator gives the same ids whatever faults exist.
  private chance(rate: number): boolean {
    return rate > 0 && this.random() < rate;
  }

  private pickStatus(): number {
    const statuses = this.faults.errorStatuses.length > 0 ? this.faults.errorStatuses : DEFAULT_FAULTS.errorStatuses;
    const index = Math.min(statuses.length - 1, Math.floor(this.random() * statuses.length));
    return statuses[index] ?? 500;
  }
}
