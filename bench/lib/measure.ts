// Rounds and medians: every subject is warmed up, then measured `ctx.rounds` times, the rounds of all
// subjects interleaved so that a slow minute on the machine hits every subject alike.
import type { BenchContext, BenchRow } from './types.ts';

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Collects each round's value per subject x metric and turns them into BenchRows (median over rounds). */
export class Rows {
  private readonly series = new Map<string, BenchRow>();

  add(subject: string, metric: string, unit: string, value: number): void {
    const key = `${subject}\u0000${metric}`;
    let row = this.series.get(key);
    if (!row) {
      row = { subject, metric, unit, median: Number.NaN, rounds: [] };
      this.series.set(key, row);
    }
    row.rounds.push(value);
    row.median = median(row.rounds);
  }

  /** The median so far; throws when nothing was recorded (a typo in a subject or metric name). */
  median(subject: string, metric: string): number {
    const row = this.series.get(`${subject}\u0000${metric}`);
    if (!row) throw new Error(`no measurement of ${subject} / ${metric}`);
    return row.median;
  }

  has(subject: string, metric: string): boolean {
    return this.series.has(`${subject}\u0000${metric}`);
  }

  rows(): BenchRow[] {
    return [...this.series.values()];
  }
}

/**
 * Warms each subject up once (not recorded; no warm-up when `warmup` is absent), then runs ctx.rounds
 * rounds, each round measuring every subject in turn. `measure(subject, round)` runs one measurement
 * and records it itself.
 */
export async function interleavedRounds<S extends { name: string }>(
  ctx: BenchContext,
  subjects: readonly S[],
  measure: (subject: S, round: number) => Promise<void>,
  warmup?: (subject: S) => Promise<void>,
): Promise<void> {
  for (const subject of warmup ? subjects : []) {
    ctx.log(`  warm-up ${subject.name}`);
    await warmup!(subject);
  }
  for (let round = 1; round <= ctx.rounds; round++) {
    for (const subject of subjects) await measure(subject, round);
  }
}

/** A ratio that may be undefined (a subject failed): NaN prints as n/a and never meets a target. */
export function ratio(numerator: number, denominator: number): number {
  return denominator > 0 && Number.isFinite(numerator) && Number.isFinite(denominator) ? numerator / denominator : Number.NaN;
}

/** Formats a number for the tables: rates as whole numbers, milliseconds with three significant digits. */
export function formatNumber(value: number, unit = ''): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (unit === 'req/s' || unit === 'MB' || Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toPrecision(3);
}
