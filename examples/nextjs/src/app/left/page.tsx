import Link from 'next/link';

export default function Left() {
  return (
    <main>
      <p>You left the chat.</p>
      <Link href="/">Back to the chat</Link>
    </main>
  );
}
