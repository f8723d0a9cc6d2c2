import { describe, expect, it } from 'vitest';
import { ProtocolError, parsePollRequest, parsePollResponse, readPollError } from '../src';

const limits = { maxSubscriptions: 3 };
const poll = (extra: Record<string, unknown> = {}) => ({ v: 1, client: 'c1', poll: 1, subscriptions: [], ...extra });

function refusal(run: () => unknown): ProtocolError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('parsePollRequest', () => {
  it('accepts a full poll and drops what it does not know', () => {
    const parsed = parsePollRequest(
      poll({
        hold: 1000,
        connectionParams: { token: 't' },
        extra: 'ignored',
        subscriptions: [
          { key: 'a', path: 'post.onAdd', input: { json: null }, cursor: { run: 'r1', seq: 2, lastEventId: '7', restart: true } },
          { key: 'b', path: 'ticks' },
        ],
      }),
      limits,
    );
    expect(parsed).toEqual({
      v: 1,
      client: 'c1',
      poll: 1,
      hold: 1000,
      connectionParams: { token: 't' },
      subscriptions: [
        { key: 'a', path: 'post.onAdd', input: { json: null }, cursor: { run: 'r1', seq: 2, lastEventId: '7', restart: true } },
        { key: 'b', path: 'ticks' },
      ],
    });
  });

  it.each([
    ['not an object', 'hello', 'The poll body must be a JSON object'],
    ['an array', [], 'The poll body must be a JSON object'],
    ['subscriptions missing', { v: 1, client: 'c', poll: 1 }, 'subscriptions must be an array'],
    ['empty client id', poll({ client: '' }), 'client must be a non-empty string of at most 64 characters'],
    ['negative poll number', poll({ poll: -1 }), 'poll must be a non-negative integer'],
    ['fractional hold', poll({ hold: 1.5 }), 'hold must be a non-negative integer'],
    ['a number as connection param', poll({ connectionParams: { n: 1 } }), 'connectionParams.n must be a string'],
    ['a subscription without path', poll({ subscriptions: [{ key: 'a' }] }), 'subscriptions[0].path must be a non-empty string'],
    ['a cursor without run', poll({ subscriptions: [{ key: 'a', path: 'p', cursor: { seq: 1 } }] }), 'subscriptions[0].cursor.run must be'],
    ['a string seq', poll({ subscriptions: [{ key: 'a', path: 'p', cursor: { run: 'r', seq: '1' } }] }), 'subscriptions[0].cursor.seq must be a non-negative integer'],
    ['restart: false', poll({ subscriptions: [{ key: 'a', path: 'p', cursor: { run: 'r', seq: 1, restart: false } }] }), 'subscriptions[0].cursor.restart must be true when present'],
    ['a repeated key', poll({ subscriptions: [{ key: 'a', path: 'p' }, { key: 'a', path: 'q' }] }), 'subscriptions[1].key "a" is repeated'],
  ])('refuses %s with a message naming the field', (_name, body, message) => {
    const error = refusal(() => parsePollRequest(body, limits));
    expect(error.kind).toBe('invalid');
    expect(error.message).toContain(message);
  });

  it('refuses another protocol version, saying which it speaks', () => {
    const error = refusal(() => parsePollRequest(poll({ v: 2 }), limits));
    expect(error.kind).toBe('version');
    expect(error.message).toBe('Unsupported protocol version 2; this side speaks trpc-longpoll v1');
  });

  it('refuses more subscriptions than the limit with its own kind', () => {
    const subscriptions = ['a', 'b', 'c', 'd'].map((key) => ({ key, path: 'p' }));
    const error = refusal(() => parsePollRequest(poll({ subscriptions }), limits));
    expect(error.kind).toBe('too-many-subscriptions');
    expect(error.message).toBe('A poll may carry at most 3 subscriptions; this one has 4');
  });
});

describe('parsePollResponse', () => {
  it('accepts events, ends and more', () => {
    const value = {
      v: 1,
      results: {
        a: { run: 'r', events: [{ seq: 1, id: 'x', data: { json: 1 } }, { seq: 2 }], end: { type: 'stopped' } },
        b: { end: { type: 'error', error: { message: 'm', code: -32009 }, reason: 'resume-lost' } },
      },
      more: true,
    };
    expect(parsePollResponse(value)).toEqual(value);
  });

  it.each([
    ['an HTML page', '<html>', 'The poll response must be a JSON object'],
    ['no results', { v: 1 }, 'results must be an object'],
    ['events not a list', { v: 1, results: { a: { events: {} } } }, 'results.a.events must be an array'],
    ['an event without seq', { v: 1, results: { a: { events: [{ data: 1 }] } } }, 'results.a.events[0].seq must be a non-negative integer'],
    ['an unknown end', { v: 1, results: { a: { end: { type: 'done' } } } }, 'results.a.end.type must be "stopped" or "error"'],
    ['an unknown reason', { v: 1, results: { a: { end: { type: 'error', error: {}, reason: 'lost' } } } }, 'results.a.end.reason is unknown'],
    ['an empty run id', { v: 1, results: { a: { run: '' } } }, 'results.a.run must be a non-empty string'],
  ])('refuses %s', (_name, body, message) => {
    expect(refusal(() => parsePollResponse(body)).message).toContain(message);
  });

  it('refuses an answer from another protocol version', () => {
    expect(refusal(() => parsePollResponse({ v: 0, results: {} })).kind).toBe('version');
  });
});

describe('readPollError', () => {
  it('reads the shape of a poll-wide error, and of a plain tRPC error body', () => {
    expect(readPollError({ v: 1, error: { message: 'm', code: -32001 } })).toEqual({ error: { message: 'm', code: -32001 } });
    expect(readPollError({ error: { message: 'm', code: -32001 } })).toEqual({ error: { message: 'm', code: -32001 } });
    expect(readPollError({ v: 1, results: {} })).toBeNull();
    expect(readPollError('Bad gateway')).toBeNull();
  });
});
