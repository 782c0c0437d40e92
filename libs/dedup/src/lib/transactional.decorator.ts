import { TRANSACTIONAL_METADATA } from './dedup.constants';

/**
 * Marks an `@Idempotent` method as transactional (same as `@Idempotent({ transactional: true })`),
 * above or below `@Idempotent`. Attaches metadata only: without `@Idempotent` it does nothing.
 */
export function Transactional(): MethodDecorator {
  return (_target, propertyKey, descriptor) => {
    if (typeof descriptor.value !== 'function') {
      throw new TypeError(`@Transactional() decorates methods only (${String(propertyKey)})`);
    }
    Reflect.defineMetadata(TRANSACTIONAL_METADATA, true, descriptor.value);
    return descriptor;
  };
}
