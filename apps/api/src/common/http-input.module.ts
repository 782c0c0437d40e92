import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { HttpInputGuard } from './http-input.guard';

/** App-wide handling of HTTP input: what every route refuses with a 400 before a handler runs. */
@Module({
  providers: [{ provide: APP_GUARD, useClass: HttpInputGuard }],
})
export class HttpInputModule {}
