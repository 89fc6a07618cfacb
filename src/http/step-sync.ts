import type { HookHandlerDoneFunction } from 'fastify';

/**
 * Runs `step` and hands its value to `then`, synchronously when it has one: a known key and
 * tier (every request but a tenant's first) cost no promise. A throw or rejection ends the
 * request through `done`, where the error handler maps it.
 */
export function stepSync<T>(step: () => T | Promise<T>, then: (value: T) => void, done: HookHandlerDoneFunction): void {
  let value: T | Promise<T>;
  try {
    value = step();
  } catch (err) {
    return done(err as Error);
  }
  if (!(value instanceof Promise)) return then(value);
  value.then(
    (v) => {
      // Out of Fastify's own try/catch here: a throw must still end the request, not the process.
      try {
        then(v);
      } catch (err) {
        done(err as Error);
      }
    },
    (err: unknown) => done(err as Error),
  );
}
