import { QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';
import { createClients, optionsFromLocation, TRPCProvider } from './trpc';

const options = optionsFromLocation(location.search);
const { queryClient, trpcClient } = createClients(options);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <App transport={options.transport} />
      </TRPCProvider>
    </QueryClientProvider>
  </StrictMode>,
);
