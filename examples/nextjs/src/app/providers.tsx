'use client';
import { QueryClientProvider } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { createClients, TRPCProvider } from './trpc';

export function Providers({ children }: { children: ReactNode }) {
  // One client per page: created on first render, never per render. Nothing
  // connects during server rendering, since subscriptions start in effects.
  const [{ queryClient, trpcClient }] = useState(createClients);
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider queryClient={queryClient} trpcClient={trpcClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}
