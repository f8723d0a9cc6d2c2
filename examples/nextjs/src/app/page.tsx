import { Chat } from './chat';
import { Providers } from './providers';

export default async function Page({ searchParams }: { searchParams: Promise<{ name?: string }> }) {
  const { name } = await searchParams;
  return (
    <Providers>
      <Chat initialName={name ?? 'guest'} />
    </Providers>
  );
}
