// Seed 003's completion callbacks: POST the task object to the submitter's URL, 10 s timeout,
// up to 3 retries after 1, 2 and 4 s, any 2xx is success. The waits are scaled like generation
// times so that a test sees the retries in milliseconds.

export interface CallbackAttempt {
  url: string;
  taskId: string;
  attempt: number;
  /** The receiver's HTTP status, or null when no answer came (refused, timed out). */
  status: number | null;
  error: string | null;
}

export interface CallbackPolicy {
  timeoutMs: number;
  retryDelaysMs: readonly number[];
}

export const SEED_003_CALLBACK_POLICY: CallbackPolicy = { timeoutMs: 10_000, retryDelaysMs: [1000, 2000, 4000] };

export function scaledPolicy(policy: CallbackPolicy, timeScale: number): CallbackPolicy {
  return { ...policy, retryDelaysMs: policy.retryDelaysMs.map((ms) => Math.round(ms * timeScale)) };
}

export class CallbackSender {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<AbortController>();
  private readonly log: CallbackAttempt[] = [];
  private closed = false;

  constructor(private readonly policy: CallbackPolicy) {}

  send(url: string, taskId: string, payload: unknown): void {
    void this.attempt(url, taskId, JSON.stringify(payload), 0);
  }

  /** Every attempt made so far, for tests that run in another process (the control route shows them). */
  attempts(): CallbackAttempt[] {
    return this.log.map((entry) => ({ ...entry }));
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const controller of this.inFlight) controller.abort();
    this.inFlight.clear();
  }

  private async attempt(url: string, taskId: string, body: string, attempt: number): Promise<void> {
    if (this.closed) return;
    const outcome = await this.post(url, body);
    this.log.push({ url, taskId, attempt, ...outcome });
    const delivered = outcome.status !== null && outcome.status >= 200 && outcome.status <= 299;
    const delay = this.policy.retryDelaysMs[attempt];
    if (delivered || this.closed || delay === undefined) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(url, taskId, body, attempt + 1);
    }, delay);
    timer.unref();
    this.timers.add(timer);
  }

  private async post(url: string, body: string): Promise<{ status: number | null; error: string | null }> {
    const controller = new AbortController();
    this.inFlight.add(controller);
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'seedance-sandbox-callback/1' },
        body,
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(this.policy.timeoutMs)]),
      });
      // Read the answer to the end so the connection can be reused or closed cleanly.
      await response.arrayBuffer().catch(() => undefined);
      return { status: response.status, error: null };
    } catch (error) {
      return { status: null, error: error instanceof Error ? error.message : String(error) };
    } finally {
      this.inFlight.delete(controller);
    }
  }
}
