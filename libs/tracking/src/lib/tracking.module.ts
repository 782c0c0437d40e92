import {
  DynamicModule,
  InjectionToken,
  Module,
  ModuleMetadata,
  OptionalFactoryDependency,
  Provider,
} from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ClickSummaryService } from './click-summary.service';
import { ClickRecorder } from './click.recorder';
import { LinkBuilder } from './link.builder';
import { LinkVerifier } from './link.verifier';
import { TrackingClick } from './tracking-click.entity';
import {
  parseTrackingOptions,
  ResolvedTrackingOptions,
  TRACKING_OPTIONS,
  TrackingOptions,
} from './tracking.options';

interface TrackingModuleFlags {
  /**
   * Also provide {@link ClickRecorder} and {@link ClickSummaryService}. Needs the app's TypeORM connection
   * (`TypeOrmModule.forRoot`) with TRACKING_ENTITIES and TRACKING_MIGRATIONS registered. Default false:
   * building links needs no database.
   */
  recordClicks?: boolean;
  /** Register the module globally. */
  global?: boolean;
}

export type TrackingModuleOptions = TrackingOptions & TrackingModuleFlags;

export interface TrackingModuleAsyncOptions extends TrackingModuleFlags, Pick<ModuleMetadata, 'imports'> {
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  useFactory: (...args: never[]) => TrackingOptions | Promise<TrackingOptions>;
}

/**
 * Signed tracking links ({@link LinkBuilder}, {@link LinkVerifier}) and, with `recordClicks`, the click
 * recorder and summary service. Options are validated at boot.
 */
@Module({})
export class TrackingModule {
  static forRoot(options: TrackingModuleOptions): DynamicModule {
    const { recordClicks, global, ...tracking } = options;
    return TrackingModule.create(
      { provide: TRACKING_OPTIONS, useValue: parseTrackingOptions(tracking) },
      { recordClicks, global },
    );
  }

  static forRootAsync(options: TrackingModuleAsyncOptions): DynamicModule {
    return TrackingModule.create(
      {
        provide: TRACKING_OPTIONS,
        inject: options.inject ?? [],
        useFactory: async (...args: never[]) => parseTrackingOptions(await options.useFactory(...args)),
      },
      options,
      options.imports,
    );
  }

  private static create(
    optionsProvider: Provider,
    flags: TrackingModuleFlags,
    imports: ModuleMetadata['imports'] = [],
  ): DynamicModule {
    const linkProviders: Provider[] = [
      optionsProvider,
      {
        provide: LinkBuilder,
        inject: [TRACKING_OPTIONS],
        useFactory: (o: ResolvedTrackingOptions) => new LinkBuilder(o),
      },
      {
        provide: LinkVerifier,
        inject: [TRACKING_OPTIONS],
        useFactory: (o: ResolvedTrackingOptions) => new LinkVerifier(o),
      },
    ];
    const clickProviders: Provider[] = flags.recordClicks ? [ClickRecorder, ClickSummaryService] : [];
    return {
      module: TrackingModule,
      global: flags.global ?? false,
      imports: [...imports, ...(flags.recordClicks ? [TypeOrmModule.forFeature([TrackingClick])] : [])],
      providers: [...linkProviders, ...clickProviders],
      exports: [TRACKING_OPTIONS, LinkBuilder, LinkVerifier, ...clickProviders],
    };
  }
}
