import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, TEACHING_TEMPO } from '../src/api/types';

// The settings form starts from DEFAULT_SETTINGS; it must show what the lab would use anyway.
describe('default settings', () => {
  it('match the lab protocol\'s Default for ClusterSettings', () => {
    const rust = readFileSync(resolve(import.meta.dirname, '../../labs/src/settings.rs'), 'utf8');
    const block = /impl Default for ClusterSettings \{[\s\S]*?ClusterSettings \{([\s\S]*?)\n\s*\}/.exec(rust)?.[1];
    expect(block).toBeTruthy();
    const fields = Object.fromEntries([...block!.matchAll(/(\w+): ("([^"]*)"\.into\(\)|true|false|\d+)/g)]
      .map(([, k, raw, str]) => [k, str ?? (raw === 'true' ? true : raw === 'false' ? false : Number(raw))]));
    expect(fields).toEqual(DEFAULT_SETTINGS);
  });

  it('the teaching tempo matches ClusterSettings::teaching_tempo()', () => {
    const rust = readFileSync(resolve(import.meta.dirname, '../../labs/src/settings.rs'), 'utf8');
    const block = /fn teaching_tempo\(\) -> ClusterSettings \{([\s\S]*?)\.\.ClusterSettings::default\(\)/.exec(rust)?.[1];
    expect(block).toBeTruthy();
    const fields = Object.fromEntries([...block!.matchAll(/(\w+): (\d+)/g)].map(([, k, v]) => [k, Number(v)]));
    expect(fields).toEqual(TEACHING_TEMPO);
  });
});
