import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckResult } from '@nestjs/terminus';
import { HealthService, METRICS_REGISTRY } from '@once/platform';
import { Registry } from 'prom-client';

@ApiTags('ops')
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthService,
    @Inject(METRICS_REGISTRY) private readonly registry: Registry,
  ) {}

  @Get('health')
  @HealthCheck()
  @ApiOperation({ summary: 'Postgres, Redis, SQS and SES reachability (503 when any is down)' })
  check(): Promise<HealthCheckResult> {
    return this.health.check();
  }

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Prometheus metrics' })
  async metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
