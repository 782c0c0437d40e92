import {
  BadRequestException,
  HttpException,
  NotFoundException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { isReportableException } from './admin-error.filter';

describe('isReportableException', () => {
  it('reports server errors and anything that is not an HTTP exception', () => {
    expect(isReportableException(new Error('bug'))).toBe(true);
    expect(isReportableException(new TypeError('x is undefined'))).toBe(true);
    expect(isReportableException('thrown string')).toBe(true);
    expect(isReportableException(null)).toBe(true);
    expect(isReportableException(new ServiceUnavailableException())).toBe(true);
    expect(isReportableException(new HttpException('gateway', 502))).toBe(true);
  });

  it('does not report client errors', () => {
    expect(isReportableException(new NotFoundException())).toBe(false);
    expect(isReportableException(new BadRequestException())).toBe(false);
    expect(
      isReportableException(Object.assign(new Error('request entity too large'), { statusCode: 413 })),
    ).toBe(false);
  });
});
