/** Shared building blocks of the self-contained HTML reports (serving, training). */
export * from './html';
