import { RequestMethod } from '@nestjs/common';
import { loggingParams } from './logging.module';

describe('loggingParams: quiet routes', () => {
  const options = (level: string) => ({
    app: 'api',
    version: '1',
    level,
    pretty: false,
    quietRoutes: ['daily'],
  });

  it('above info, pino-http leaves the quiet routes alone', () => {
    expect(loggingParams(options('warn')).exclude).toEqual([{ path: 'daily', method: RequestMethod.ALL }]);
    expect(loggingParams(options('error')).exclude).toEqual([{ path: 'daily', method: RequestMethod.ALL }]);
  });

  it('at info and below every request is logged, quiet routes included', () => {
    expect(loggingParams(options('info')).exclude).toBeUndefined();
    expect(loggingParams(options('debug')).exclude).toBeUndefined();
    expect(loggingParams({ ...options('warn'), quietRoutes: [] }).exclude).toBeUndefined();
  });
});
