import { describe, expect, it } from 'vitest';
import { commonDir, whereNote } from '../src/views/export';

describe('export panel wording', () => {
  it('names the directory the files share', () => {
    expect(commonDir(['/tmp/x/clusterlab-export/timeline.jsonl'])).toBe('/tmp/x/clusterlab-export');
    expect(commonDir(['/a/b/t.jsonl', '/a/b/charts/rate.svg', '/a/b/t.csv'])).toBe('/a/b');
    expect(commonDir(['/a/t.jsonl', '/b/t.csv'])).toBe('/');
    expect(commonDir(['t.jsonl', 'u.csv'])).toBe('');
    expect(commonDir([])).toBe('');
  });

  it('before an export it says who writes the files, and never ends on a colon', () => {
    for (const kind of ['desktop', 'server'] as const) expect(whereNote(kind)).not.toMatch(/:\s*$/);
    expect(whereNote('desktop')).toMatch(/this computer/);
    expect(whereNote('server')).toMatch(/lab server/);
  });
});
