import { DynamicModule, Module } from '@nestjs/common';
import { TrackingModule, TrackingModuleAsyncOptions, TrackingOptions } from '@once/tracking';
import { ClicksAdminController } from './clicks-admin.controller';
import { DailyController } from './daily.controller';

/**
 * `GET /daily/` (signed click redirect) and `GET /admin/clicks/summary` (ClicksAdminController: put the
 * admin guard on it). Needs the app's TypeORM connection with TRACKING_ENTITIES and TRACKING_MIGRATIONS.
 */
@Module({})
export class DailyModule {
  static forRoot(options: TrackingOptions): DynamicModule {
    return {
      module: DailyModule,
      imports: [TrackingModule.forRoot({ ...options, recordClicks: true })],
      controllers: [DailyController, ClicksAdminController],
    };
  }

  static forRootAsync(options: Omit<TrackingModuleAsyncOptions, 'recordClicks' | 'isGlobal'>): DynamicModule {
    return {
      module: DailyModule,
      imports: [TrackingModule.forRootAsync({ ...options, recordClicks: true })],
      controllers: [DailyController, ClicksAdminController],
    };
  }
}
