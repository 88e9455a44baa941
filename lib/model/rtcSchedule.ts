/** The prefix weight schedules of Real-Time Chunking (no native code here: the runtime validates with it). */

/** How the prefix weight falls from 1 (the delayed actions) to 0 (at the execution horizon). */
export type PrefixSchedule = 'zeros' | 'ones' | 'linear' | 'exp';

export const PREFIX_SCHEDULES: readonly PrefixSchedule[] = ['zeros', 'ones', 'linear', 'exp'];
