// Per-key rate limits as token buckets: `perMinute` tokens refill evenly over a minute, and a burst of
// up to `perMinute` is allowed. Kept in memory: with several instances each enforces its own share
// (a shared store would be needed for an exact global limit).

export interface RateDecision {
  ok: boolean;
  /** When the next token will be there, if refused. */
  retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly refillPerMs: number;

  constructor(private readonly perMinute: number, private readonly now: () => number = Date.now) {
    this.refillPerMs = perMinute / 60_000;
  }

  take(key: string, count = 1): RateDecision {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.perMinute, updatedAt: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.updatedAt) * this.refillPerMs);
    bucket.updatedAt = now;
    if (bucket.tokens >= count) {
      bucket.tokens -= count;
      this.buckets.set(key, bucket);
      this.forgetFullBuckets(now);
      return { ok: true, retryAfterSeconds: 0 };
    }
    this.buckets.set(key, bucket);
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((count - bucket.tokens) / this.refillPerMs / 1000)) };
  }

  /** A full bucket is the same as no bucket: dropping them keeps memory bounded by active keys. */
  private forgetFullBuckets(now: number): void {
    if (this.buckets.size < 10_000) return;
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.updatedAt) * this.refillPerMs >= this.perMinute) this.buckets.delete(key);
    }
  }
}
