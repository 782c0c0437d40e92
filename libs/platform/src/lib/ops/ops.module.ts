import { DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { HealthService } from './health.service';
import { OpsHttpServer } from './ops-http.server';
import { METRICS_REGISTRY, OPS_OPTIONS, OpsOptions } from './ops.options';

/** Health (terminus) and Prometheus metrics for an app; optionally served on their own port. */
@Module({})
export class OpsModule {
  static forRoot(options: OpsOptions): DynamicModule {
    return {
      module: OpsModule,
      global: true,
      imports: [TerminusModule.forRoot({ logger: false })],
      providers: [
        { provide: OPS_OPTIONS, useValue: options },
        {
          provide: METRICS_REGISTRY,
          useFactory: () => {
            const registry = new Registry();
            registry.setDefaultLabels({ app: options.app });
            collectDefaultMetrics({ register: registry });
            return registry;
          },
        },
        HealthService,
        OpsHttpServer,
      ],
      exports: [METRICS_REGISTRY, HealthService, OpsHttpServer],
    };
  }
}
