import { ConfigurableModuleBuilder } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Provider } from '@nestjs/common';
import { ClickSpill } from './click-spill.stream';
import { ClickSummaryService } from './click-summary.service';
import { ClickRecorder } from './click.recorder';
import { ClickStore, PostgresClickStore } from './click.store';
import { TrackingClick } from './tracking-click.entity';
import {
  TRACKING_OPTIONS,
  type ResolvedTrackingOptions,
  type TrackingModuleExtras,
  type TrackingOptions,
  type TrackingOptionsFactory,
} from './tracking.options';

/** The click recorder, where it writes, and its spill (none without `clickSpill`). */
const CLICK_PROVIDERS: Provider[] = [
  { provide: ClickStore, useClass: PostgresClickStore },
  {
    provide: ClickSpill,
    inject: [TRACKING_OPTIONS],
    useFactory: ({ clickSpill }: ResolvedTrackingOptions) =>
      clickSpill ? new ClickSpill(clickSpill.redis, clickSpill.streamKey, clickSpill.maxLength) : null,
  },
];

/** Token of the options as the app passed them; TRACKING_OPTIONS holds them validated. */
export const TRACKING_MODULE_OPTIONS = Symbol('TRACKING_MODULE_OPTIONS');

export const { ConfigurableModuleClass: ConfigurableTrackingModule } =
  new ConfigurableModuleBuilder<TrackingOptions>({
    optionsInjectionToken: TRACKING_MODULE_OPTIONS,
  })
    .setClassMethodName('forRoot')
    .setFactoryMethodName('createTrackingOptions' satisfies keyof TrackingOptionsFactory)
    .setExtras<TrackingModuleExtras>({ isGlobal: false, recordClicks: false }, (definition, extras) => {
      const clicks = extras.recordClicks ? [ClickRecorder, ClickSummaryService] : [];
      const internal = extras.recordClicks ? CLICK_PROVIDERS : [];
      return {
        ...definition,
        global: extras.isGlobal,
        imports: [
          ...(definition.imports ?? []),
          ...(extras.recordClicks ? [TypeOrmModule.forFeature([TrackingClick])] : []),
        ],
        providers: [...(definition.providers ?? []), ...internal, ...clicks],
        exports: [...(definition.exports ?? []), ...clicks],
      };
    })
    .build();
