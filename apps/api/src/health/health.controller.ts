import { Controller, Get, Header, Inject, ServiceUnavailableException } from '@nestjs/common';
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

  @Get('health/live')
  @ApiOperation({ summary: 'Liveness: the process answers (no dependency is probed)' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /**
   * Readiness of the api: always ready, since `/daily/` needs no dependency (clicks wait in a
   * Redis stream or in memory); `degraded`, with what is down, when a dependency is (admin
   * routes that need Postgres then answer 503).
   */
  @Get('health/ready')
  @ApiOperation({
    summary:
      'Readiness: 200 with status ok, or degraded and the dependencies down (the redirect still works)',
  })
  async ready(): Promise<{
    status: 'ok' | 'degraded';
    down: string[];
    details: HealthCheckResult['details'];
  }> {
    try {
      const result = await this.health.check();
      return { status: 'ok', down: [], details: result.details };
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      const result = error.getResponse() as HealthCheckResult;
      return { status: 'degraded', down: Object.keys(result.error ?? {}), details: result.details };
    }
  }

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Prometheus metrics' })
  async metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
