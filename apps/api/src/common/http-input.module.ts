import { Module } from '@nestjs/common';

/** App-wide handling of HTTP input: what every route refuses with a 400 before a handler runs. */
@Module({})
export class HttpInputModule {}
