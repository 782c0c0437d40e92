import { ConfigurableModuleBuilder } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ClickSummaryService } from './click-summary.service';
import { ClickRecorder } from './click.recorder';
import { TrackingClick } from './tracking-click.entity';
import type { TrackingModuleExtras, TrackingOptions, TrackingOptionsFactory } from './tracking.options';

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
      return {
        ...definition,
        global: extras.isGlobal,
        imports: [
          ...(definition.imports ?? []),
          ...(extras.recordClicks ? [TypeOrmModule.forFeature([TrackingClick])] : []),
        ],
        providers: [...(definition.providers ?? []), ...clicks],
        exports: [...(definition.exports ?? []), ...clicks],
      };
    })
    .build();
