// The contract between bench/run.ts and every benchmark module (bench/<name>.ts default-exports a Benchmark).

/** What the runner hands each benchmark: how long to measure, and where to pin processes. */
export interface BenchContext {
  /** Measured rounds per subject; each row's median is over these. */
  rounds: number;
  /** Load before each subject's first round, not measured (JIT, caches, connection pools). */
  warmupSeconds: number;
  /** Length of one measured round. */
  durationSeconds: number;
  /** `taskset -c` CPU list for servers, or null when taskset is not available. */
  serverCpu: string | null;
  /** `taskset -c` CPU list for load generators, or null when taskset is not available. */
  loadCpu: string | null;
  log(line: string): void;
}

/** One row per subject x metric: the median over rounds, and every round's value. */
export interface BenchRow { subject: string; metric: string; median: number; unit: string; rounds: number[] }

/** A ratio against a target, e.g. { label: 'ours / apollo throughput', value: 1.23, target: '>= 1.0', met: true }; met is null when there is no target. */
export interface BenchRatio { label: string; value: number; target: string; met: boolean | null }

export interface BenchResult { name: string; title: string; rows: BenchRow[]; ratios: BenchRatio[]; notes: string[] }

export type Benchmark = (ctx: BenchContext) => Promise<BenchResult>;
