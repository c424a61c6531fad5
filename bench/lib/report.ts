// The results as markdown: one section per benchmark, and bench/results.md, whose sections are
// replaced only for the benchmarks of this run, so that a run of one keeps the others' last results.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { formatNumber } from './measure.ts';
import type { BenchResult } from './types.ts';

export interface Machine {
  date: string;
  node: string;
  cpu: string;
  cores: number;
  pinning: string;
}

export function describeMachine(pinning: string): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // Not Linux: os.cpus() said what it could.
  }
  return { date: new Date().toISOString(), node: process.version, cpu, cores: cpus().length, pinning };
}

const met = (value: boolean | null) => (value === null ? '–' : value ? 'yes' : '**NO**');

export function resultMarkdown(result: BenchResult, machine: Machine): string {
  const lines = [
    `## ${result.name}: ${result.title}`,
    '',
    `_Run ${machine.date} on Node ${machine.node}, ${machine.cpu} (${machine.cores} cores), ${machine.pinning}._`,
    '',
    '| Subject | Metric | Median | Unit | Rounds |',
    '| --- | --- | ---: | --- | --- |',
    ...result.rows.map((row) => `| ${row.subject} | ${row.metric} | ${formatNumber(row.median, row.unit)} | ${row.unit} | ${row.rounds.map((v) => formatNumber(v, row.unit)).join(', ')} |`),
  ];
  if (result.ratios.length > 0) {
    lines.push('', '| Ratio | Value | Target | Met |', '| --- | ---: | --- | --- |',
      ...result.ratios.map((r) => `| ${r.label} | ${Number.isFinite(r.value) ? r.value.toFixed(2) : 'n/a'} | ${r.target} | ${met(r.met)} |`));
  }
  if (result.notes.length > 0) lines.push('', ...result.notes.map((note) => `- ${note}`));
  return lines.join('\n');
}

const begin = (name: string) => `<!-- bench:${name}:begin -->`;
const end = (name: string) => `<!-- bench:${name}:end -->`;

/**
 * Writes `file`: a header naming the machine of the latest run, then each benchmark's section, the
 * ones of this run replaced (or added in `order`), the others kept as they were.
 */
export function writeResults(file: string, results: readonly BenchResult[], machine: Machine, order: readonly string[], extraHeader: readonly string[] = []): void {
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const sections = new Map<string, string>();
  for (const match of previous.matchAll(/<!-- bench:([\w-]+):begin -->\n([\s\S]*?)\n<!-- bench:\1:end -->/g)) {
    sections.set(match[1]!, match[2]!);
  }
  for (const result of results) sections.set(result.name, resultMarkdown(result, machine));
  const names = [...order.filter((name) => sections.has(name)), ...[...sections.keys()].filter((name) => !order.includes(name))];
  const header = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (bench/run.ts); each section is replaced only when its benchmark runs, and',
    'says when and where it ran. Medians over rounds; every round is listed. Ratios name their target.',
    '',
    `Latest run: ${machine.date}, Node ${machine.node}, ${machine.cpu}, ${machine.cores} cores, ${machine.pinning}.`,
    ...(extraHeader.length > 0 ? ['', ...extraHeader] : []),
    '',
  ];
  const body = names.map((name) => `${begin(name)}\n${sections.get(name)}\n${end(name)}`).join('\n\n');
  writeFileSync(file, `${header.join('\n')}\n${body}\n`);
}
