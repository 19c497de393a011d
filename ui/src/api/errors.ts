// Turning whatever a rejected promise carries into text a person can act on. Tauri rejects an
// invoke with the command's error value as is: the shell's `{code, message}` object, a plain
// string, or an Error; `String(obj)` would show "[object Object]".

import type { LabFailure } from './types';

/** A readable message for any thrown or rejected value. */
export function describeError(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message || e.name;
  if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
  if (e === undefined || typeof e === 'function' || typeof e === 'symbol') return String(e);
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    // Cyclic or otherwise unserialisable: at least name what it holds.
    return `unprintable error object with keys: ${Object.keys(e as object).join(', ') || '(none)'}`;
  }
}

/** A lab-style failure: the value's own `code` when it has one (the shell's errors do), else `fallback`. */
export function toFailure(e: unknown, fallback: string): LabFailure {
  const code = e && typeof e === 'object' && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : fallback;
  return { code, message: describeError(e) };
}
