import type { TRPCClientError } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import { describe, expectTypeOf, it } from 'vitest';
import { longPollLink, type LongPollLinkOptions, type PollFailedInfo, type PollFailureReason, type PollOutcomeInfo } from '../src';

/** Compile-time contract of `onPollOutcome` (tsc checks this file in `pnpm typecheck`; vitest runs it too). */
describe('onPollOutcome types', () => {
  it('is an option of the link taking the outcome union', () => {
    expectTypeOf<LongPollLinkOptions<AnyTRPCRouter>['onPollOutcome']>().toEqualTypeOf<((outcome: PollOutcomeInfo) => void) | undefined>();
    longPollLink({ url: '/trpc', onPollOutcome: (outcome) => expectTypeOf(outcome).toEqualTypeOf<PollOutcomeInfo>() });
  });

  it('narrows on `type`: each kind carries its own fields and every kind the shared ones', () => {
    const handle = (outcome: PollOutcomeInfo) => {
      expectTypeOf(outcome.type).toEqualTypeOf<'answered' | 'failed' | 'stale'>();
      expectTypeOf(outcome).pick<'poll' | 'client' | 'subscriptions' | 'durationMs'>().toEqualTypeOf<{
        poll: number;
        client: string;
        subscriptions: number;
        durationMs: number;
      }>();
      if (outcome.type === 'answered') {
        expectTypeOf(outcome).pick<'events' | 'results' | 'pauseMs'>().toEqualTypeOf<{ events: number; results: number; pauseMs: number }>();
        // @ts-expect-error an answer has no error
        void outcome.error;
      } else if (outcome.type === 'failed') {
        expectTypeOf(outcome.reason).toEqualTypeOf<PollFailureReason>();
        expectTypeOf(outcome.reason).toEqualTypeOf<'network' | 'watchdog' | 'http' | 'invalid-answer'>();
        expectTypeOf(outcome.error).toEqualTypeOf<TRPCClientError<AnyTRPCRouter>>();
        // null: the failure was fatal and ended the subscriptions.
        expectTypeOf(outcome.backoffMs).toEqualTypeOf<number | null>();
      } else {
        expectTypeOf(outcome).toExtend<{ type: 'stale'; inARow: number; backoffMs: number; newClient: boolean }>();
      }
    };
    expectTypeOf(handle).parameter(0).toEqualTypeOf<PollOutcomeInfo>();
  });

  it('has an HTTP status exactly when the failure is an HTTP one', () => {
    const status = (failure: PollFailedInfo) => {
      // @ts-expect-error only an HTTP failure has a status
      void failure.status;
      if (failure.reason === 'http') {
        expectTypeOf(failure.status).toEqualTypeOf<number>();
        return failure.status;
      }
      expectTypeOf(failure.reason).toEqualTypeOf<'network' | 'watchdog' | 'invalid-answer'>();
      return null;
    };
    expectTypeOf(status).returns.toEqualTypeOf<number | null>();
  });
});
