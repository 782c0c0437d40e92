/** SQS allows a visibility timeout of 12 hours at most. */
export const MAX_VISIBILITY_SECONDS = 43_200;

/** SQS allows a per-message delay of 15 minutes at most. */
export const MAX_DELAY_SECONDS = 900;

const clamp = (seconds: number, max: number): number =>
  Number.isNaN(seconds) ? 0 : Math.min(max, Math.max(0, Math.ceil(seconds)));

/** Whole seconds SQS accepts as a visibility timeout: rounded up, within 0..43200 (NaN: 0). */
export const clampVisibilitySeconds = (seconds: number): number => clamp(seconds, MAX_VISIBILITY_SECONDS);

/** Whole seconds SQS accepts as a message delay: rounded up, within 0..900 (NaN: 0). */
export const clampDelaySeconds = (seconds: number): number => clamp(seconds, MAX_DELAY_SECONDS);
