import { useMutation } from '@tanstack/react-query';
import { useSubscription } from '@trpc/tanstack-react-query';
import { useState, type FormEvent } from 'react';
import type { ChatMessage, Room } from '../shared/chat';
import { useTRPC } from './trpc';

const LABELS = { idle: 'ended', connecting: 'connecting…', pending: 'live', error: 'failed' } as const;

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export function RoomPanel({ room, author }: { room: Room; author: string }) {
  const trpc = useTRPC();
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [draft, setDraft] = useState('');
  // Every message handed over, repeats included: the browser test checks that none came twice.
  const [deliveries, setDeliveries] = useState(0);

  const subscription = useSubscription(
    trpc.onMessage.subscriptionOptions(
      { room, lastEventId: null },
      {
        onData: ({ data }) => {
          setDeliveries((n) => n + 1);
          // A resumed subscription may repeat the last message it saw.
          setMessages((prev) => (prev.some((m) => m.id === data.id) ? prev : [...prev, data]));
        },
      },
    ),
  );
  const send = useMutation(trpc.send.mutationOptions({ onSuccess: () => setDraft('') }));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (draft.trim()) send.mutate({ room, author, text: draft });
  };

  return (
    <section className="room" data-room={room} data-status={subscription.status} data-deliveries={deliveries}>
      <h2>
        #{room} <span className={`status ${subscription.status}`}>{LABELS[subscription.status]}</span>
      </h2>
      {subscription.status === 'error' && (
        <p className="error">
          {subscription.error?.message} <button onClick={() => subscription.reset()}>Rejoin</button>
        </p>
      )}
      <ol className="messages">
        {messages.map((m) => (
          <li key={m.id} data-id={m.id} className={m.author === author ? 'mine' : undefined}>
            <span className="meta">
              <b>{m.author}</b> <time dateTime={m.at.toISOString()}>{time.format(m.at)}</time>
            </span>
            <span className="text">{m.text}</span>
          </li>
        ))}
      </ol>
      <form onSubmit={submit}>
        <input name="text" value={draft} onChange={(e) => setDraft(e.target.value)} placeholder={`Message #${room}`} maxLength={500} />
        <button type="submit" disabled={send.isPending}>
          Send
        </button>
      </form>
    </section>
  );
}
