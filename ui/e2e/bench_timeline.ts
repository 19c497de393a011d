// A large real timeline for the import benchmark: one exported drill run, repeated with shifted
// seq and timestamps until it holds enough events (each copy reads as the next run of the drill).

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT } from './server';

/** Runs `drill` headless with `--export` into `dir`; returns its timeline.jsonl. */
export async function exportDrill(drill: string, dir: string): Promise<string> {
  const args = ['drill', 'run', drill, '--drills', join(ROOT, 'labs/drills'), '--export', join(dir, 'export'), '--data-dir', join(dir, 'data')];
  const proc = spawn(BIN, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const code = await new Promise<number | null>((ok) => proc.on('exit', ok));
  // A failed verdict still exports a full timeline; only a missing file is an error.
  const path = join(dir, 'export', drill, 'timeline.jsonl');
  if (!existsSync(path)) throw new Error(`drill ${drill} exited ${code} without a timeline:\n${err}`);
  return path;
}

/**
 * Concatenates copies of `lines` until there are at least `min` events. Copy k shifts seq by k
 * times the run's event count and every timestamp (ts_ns, op time_ns) by k times its span + 1 s.
 * Timestamps exceed 2^53, so they are shifted as text with BigInt, not through JSON numbers.
 */
export function replicate(lines: string[], min: number): string[] {
  const ts = lines.map((l) => BigInt(/"ts_ns":(\d+)/.exec(l)![1]));
  const first = ts.reduce((a, b) => (b < a ? b : a));
  const last = ts.reduce((a, b) => (b > a ? b : a));
  const seqs = lines.map((l) => Number(/"seq":(\d+)/.exec(l)![1]));
  const seqStep = Math.max(...seqs) + 1;
  const tsStep = last - first + 1_000_000_000n;
  const out: string[] = [];
  for (let k = 0; out.length < min; k++) {
    const dt = BigInt(k) * tsStep;
    for (const l of lines) {
      out.push(k === 0 ? l : l
        .replace(/"seq":(\d+)/, (_, s) => `"seq":${Number(s) + k * seqStep}`)
        .replace(/"(ts_ns|time_ns)":(\d+)/g, (_, key, t) => `"${key}":${BigInt(t) + dt}`));
    }
  }
  return out;
}

/** Writes a timeline of at least `min` events to `out`, from the drill's export in `dir`. */
export async function bigTimeline(drill: string, dir: string, out: string, min: number, from?: string): Promise<{ events: number; runEvents: number; bytes: number }> {
  const src = from ?? (await exportDrill(drill, dir));
  const lines = readFileSync(src, 'utf8').split('\n').filter((l) => l.trim());
  const all = replicate(lines, min);
  const text = all.join('\n') + '\n';
  writeFileSync(out, text);
  return { events: all.length, runEvents: lines.length, bytes: text.length };
}
