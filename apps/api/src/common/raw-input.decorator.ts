import { SetMetadata } from '@nestjs/common';

/** Metadata key of {@link RawInput}. */
export const RAW_INPUT = 'once:raw-input';

/**
 * Marks a route that reads the raw request and checks its own input (it verifies a signature over
 * it first: the click redirect, the SNS webhook), so {@link HttpInputGuard} leaves it alone.
 */
export const RawInput = (): MethodDecorator & ClassDecorator => SetMetadata(RAW_INPUT, true);
