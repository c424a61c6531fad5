// `npm run bench` runs every benchmark in order; `npm run bench -- task-query create` runs those only.
// Options for quick looks while developing (the committed results use the defaults):
//   --rounds=N (3)  --duration=SECONDS per measured round (5)  --warmup=SECONDS per subject (3)
// Servers are pinned to CPU 0 and load generators to CPU 1 with taskset when it exists. Prints each
// benchmark's table and writes bench/results.md (only the sections of the benchmarks run are replaced).
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, tasksetAvailable } from './lib/processes.ts';
import { describeMachine, resultMarkdown, writeResults } from './lib/report.ts';
import type { BenchContext, BenchResult, Benchmark } from './lib/types.ts';

const BENCHMARKS = ['task-query', 'task-list', 'create', 'fanout', 'poller', 'memory'] as const;
const RESULTS_FILE = resolve(ROOT, 'bench/results.md');

function parseArgs(argv: readonly string[]) {
  const names: string[] = [];
  const numbers = { rounds: 3, duration: 5, warmup: 3 };
  for (const arg of argv) {
    const option = /^--(rounds|duration|warmup)=(\d+(?:\.\d+)?)$/.exec(arg);
    if (option) numbers[option[1] as keyof typeof numbers] = Number(option[2]);
    else if ((BENCHMARKS as readonly string[]).includes(arg)) names.push(arg);
    else throw new Error(`unknown benchmark or option "${arg}"; benchmarks: ${BENCHMARKS.join(', ')}`);
  }
  return { names: names.length > 0 ? BENCHMARKS.filter((name) => names.includes(name)) : [...BENCHMARKS], ...numbers };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const pinned = tasksetAvailable() && cpus().length >= 2;
  const ctx: BenchContext = {
    rounds: args.rounds,
    warmupSeconds: args.warmup,
    durationSeconds: args.duration,
    serverCpu: pinned ? '0' : null,
    loadCpu: pinned ? '1' : null,
    log: (line) => console.log(line),
  };
  const pinning = pinned ? 'servers pinned to CPU 0 and load generators to CPU 1 (taskset)' : 'unpinned (taskset unavailable or one core)';
  const machine = describeMachine(pinning);
  const load = loadavg().map((value) => value.toFixed(2)).join(' ');
  const header = [`1/5/15-minute load average when this run started: ${load}.`];
  console.log(`Benchmarks: ${args.names.join(', ')}. ${args.rounds} rounds of ${args.duration} s after ${args.warmup} s of warm-up per subject; ${pinning}; load average ${load}.`);

  const started = Date.now();
  const results: BenchResult[] = [];
  const failures: string[] = [];
  for (const name of args.names) {
    const file = resolve(ROOT, `bench/${name}.ts`);
    if (!existsSync(file)) {
      console.log(`\n# ${name}: skipped, bench/${name}.ts does not exist yet`);
      continue;
    }
    console.log(`\n# ${name}`);
    const benchStarted = Date.now();
    const loadAtStart = loadavg()[0]!.toFixed(2);
    try {
      const benchmark = (await import(pathToFileURL(file).href) as { default: Benchmark }).default;
      const result = await benchmark(ctx);
      const seconds = Math.round((Date.now() - benchStarted) / 1000);
      // Other work on the machine shows in every number: say how busy it was.
      result.notes.push(`Took ${seconds} s; 1-minute load average ${loadAtStart} when it started, ${loadavg()[0]!.toFixed(2)} when it ended (${cpus().length} cores).`);
      results.push(result);
      console.log(`\n${resultMarkdown(result, machine)}`);
      // Written after each benchmark, so that a later failure keeps what was measured.
      writeResults(RESULTS_FILE, results, machine, BENCHMARKS, header);
    } catch (error) {
      failures.push(name);
      console.error(`${name} failed:`, error);
    }
  }
  // Every ratio of the run in one table, the targets' standing at a glance.
  if (results.length > 0) {
    console.log('\n## All ratios\n\n| Benchmark | Ratio | Value | Target | Met |\n| --- | --- | ---: | --- | --- |');
    for (const result of results) {
      for (const r of result.ratios) {
        console.log(`| ${result.name} | ${r.label} | ${Number.isFinite(r.value) ? r.value.toFixed(2) : 'n/a'} | ${r.target} | ${r.met === null ? '–' : r.met ? 'yes' : '**NO**'} |`);
      }
    }
  }
  const total = Math.round((Date.now() - started) / 1000);
  console.log(`\nDone in ${Math.floor(total / 60)} min ${total % 60} s; ${results.length} benchmark(s) written to bench/results.md.`);
  if (failures.length > 0) {
    console.error(`Failed: ${failures.join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
