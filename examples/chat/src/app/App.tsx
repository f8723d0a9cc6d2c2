import { useState } from 'react';
import { ROOMS, type Transport } from '../shared/chat';
import { RoomPanel } from './RoomPanel';

function initialName(): string {
  return new URLSearchParams(location.search).get('name') ?? `guest-${Math.floor(Math.random() * 9000 + 1000)}`;
}

export function App({ transport }: { transport: Transport }) {
  const [author, setAuthor] = useState(initialName);
  const other = transport === 'sse' ? 'longpoll' : 'sse';
  return (
    <main>
      <header>
        <h1>trpc-longpoll chat</h1>
        <label>
          You are <input id="author" value={author} onChange={(e) => setAuthor(e.target.value)} maxLength={40} />
        </label>
        <p className="transport" data-transport={transport}>
          {ROOMS.length} subscriptions over{' '}
          {transport === 'sse' ? <b>httpSubscriptionLink: one EventSource each</b> : <b>longPollLink: one shared poll</b>}
          {' · '}
          <a href={`?transport=${other}&name=${encodeURIComponent(author)}`}>try {other}</a>
        </p>
      </header>
      <div className="rooms">
        {ROOMS.map((room) => (
          <RoomPanel key={room} room={room} author={author} />
        ))}
      </div>
    </main>
  );
}
