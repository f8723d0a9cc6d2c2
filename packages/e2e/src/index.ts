export * from './client';
export * from './feed';
export * from './router';
export * from './server';
export * from './proxy';
export * from './listen';
