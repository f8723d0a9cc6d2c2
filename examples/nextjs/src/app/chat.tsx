'use client';
import { useMutation } from '@tanstack/react-query';
import Link from 'next/link';
import { useSubscription } from '@trpc/tanstack-react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { ChatMessage } from '../shared/chat';
import { useTRPC } from './trpc';

const LABELS = { idle: 'ended', connecting: 'connecting…', pending: 'live', error: 'failed' } as const;

/** Times the subscription went back to `connecting` once live: a reconnect, which the idle test expects none of. */
function useReconnects(status: keyof typeof LABELS): number {
  const [reconnects, setReconnects] = useState(0);
  const wasLive = useRef(false);
  useEffect(() => {
    if (status === 'pending') wasLive.current = true;
    else if (status === 'connecting' && wasLive.current) setReconnects((n) => n + 1);
  }, [status]);
  return reconnects;
}

export function Chat({ initialName }: { initialName: string }) {
  const trpc = useTRPC();
  const [author, setAuthor] = useState(initialName);
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [draft, setDraft] = useState('');
  // Every message handed over, repeats included, and every error: the browser test reads both.
  const [deliveries, setDeliveries] = useState(0);
  const [errors, setErrors] = useState(0);

  const subscription = useSubscription(
    trpc.onMessage.subscriptionOptions(
      { lastEventId: null },
      {
        onData: ({ data }) => {
          setDeliveries((n) => n + 1);
          setMessages((prev) => (prev.some((m) => m.id === data.id) ? prev : [...prev, data]));
        },
        onError: () => setErrors((n) => n + 1),
      },
    ),
  );
  const reconnects = useReconnects(subscription.status);
  const send = useMutation(trpc.send.mutationOptions({ onSuccess: () => setDraft('') }));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (draft.trim()) send.mutate({ author, text: draft });
  };

  return (
    <main data-status={subscription.status} data-deliveries={deliveries} data-errors={errors} data-reconnects={reconnects}>
      <h1>
        Chat <small>{LABELS[subscription.status]}</small>
      </h1>
      {/* A client-side navigation: the subscription ends with the page, and its procedure on the server. */}
      <Link href="/left">Leave</Link>
      <label>
        You are <input id="author" value={author} onChange={(e) => setAuthor(e.target.value)} maxLength={40} />
      </label>
      {subscription.status === 'error' && (
        <p role="alert">
          {subscription.error?.message} <button onClick={() => subscription.reset()}>Rejoin</button>
        </p>
      )}
      <ol className="messages">
        {messages.map((m) => (
          <li key={m.id} data-id={m.id}>
            <b>{m.author}</b>{' '}
            {/* `toISOString` exists only on a Date: a string here would fail the render. */}
            <time dateTime={m.at.toISOString()} data-type={m.at instanceof Date ? 'Date' : typeof m.at}>
              {m.at.toLocaleTimeString()}
            </time>{' '}
            <span className="text">{m.text}</span>
          </li>
        ))}
      </ol>
      <form onSubmit={submit}>
        <input name="text" value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="Message" maxLength={500} />
        <button type="submit" disabled={send.isPending}>
          Send
        </button>
      </form>
    </main>
  );
}
