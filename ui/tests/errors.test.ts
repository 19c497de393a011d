import { describe, expect, it } from 'vitest';
import { describeError, toFailure } from '../src/api/errors';

describe('error messages from rejected Tauri invokes', () => {
  it('the shell\'s {code, message} shows its message and keeps its code', () => {
    const e = { code: 'closing', message: 'the app is closing' };
    expect(describeError(e)).toBe('the app is closing');
    expect(toFailure(e, 'ipc')).toEqual({ code: 'closing', message: 'the app is closing' });
  });

  it('strings and Errors show as themselves, under the fallback code', () => {
    expect(toFailure('command lab_command not found', 'ipc')).toEqual({ code: 'ipc', message: 'command lab_command not found' });
    expect(describeError(new TypeError('invoke is not a function'))).toBe('invoke is not a function');
  });

  it('any other object is shown as JSON, never "[object Object]"', () => {
    expect(describeError({ kind: 'denied', detail: { cmd: 'lab_command' } })).toBe('{"kind":"denied","detail":{"cmd":"lab_command"}}');
    expect(describeError({ code: 7 })).toBe('{"code":7}');
    expect(toFailure({ code: 7 }, 'ipc').code).toBe('ipc'); // a non-string code is not a lab code
  });

  it('odd values still give text', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(describeError(cyclic)).toBe('unprintable error object with keys: self');
    expect(describeError(undefined)).toBe('undefined');
    expect(describeError(null)).toBe('null');
    expect(describeError(42)).toBe('42');
  });
});
