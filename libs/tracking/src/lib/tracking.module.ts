import { type ConfigurableModuleAsyncOptions, Module } from '@nestjs/common';
import { LinkBuilder } from './link.builder';
import { LinkVerifier } from './link.verifier';
import { RefusedLinkLog } from './refused-link.log';
import { ConfigurableTrackingModule, TRACKING_MODULE_OPTIONS } from './tracking.module-definition';
import {
  parseTrackingOptions,
  type ResolvedTrackingOptions,
  TRACKING_OPTIONS,
  type TrackingModuleExtras,
  type TrackingOptions,
} from './tracking.options';

/** Options of `TrackingModule.forRoot`. */
export type TrackingModuleOptions = TrackingOptions & TrackingModuleExtras;

/** Options of `TrackingModule.forRootAsync`: `useFactory` (with `inject`), `useClass` or `useExisting`. */
export type TrackingModuleAsyncOptions = ConfigurableModuleAsyncOptions<
  TrackingOptions,
  'createTrackingOptions'
> &
  TrackingModuleExtras;

/**
 * Signed tracking links ({@link LinkBuilder}, {@link LinkVerifier}) and, with `recordClicks`, the click
 * recorder and summary service. `forRoot(options)` or `forRootAsync({ useFactory | useClass | useExisting })`;
 * not global unless `isGlobal: true`. Options are validated once, at boot.
 */
@Module({
  providers: [
    { provide: TRACKING_OPTIONS, inject: [TRACKING_MODULE_OPTIONS], useFactory: parseTrackingOptions },
    {
      provide: LinkBuilder,
      inject: [TRACKING_OPTIONS],
      useFactory: (options: ResolvedTrackingOptions) => new LinkBuilder(options),
    },
    {
      provide: LinkVerifier,
      inject: [TRACKING_OPTIONS],
      useFactory: (options: ResolvedTrackingOptions) => new LinkVerifier(options),
    },
    RefusedLinkLog,
  ],
  exports: [TRACKING_OPTIONS, LinkBuilder, LinkVerifier, RefusedLinkLog],
})
export class TrackingModule extends ConfigurableTrackingModule {}
