import {
  Controller,
  ForbiddenException,
  HttpCode,
  Logger,
  Post,
  Req,
  ServiceUnavailableException,
} from '@nestjs/common';
import { SesFeedbackService, SnsSignatureVerifier, SnsVerificationError, type SnsMessage } from '@once/mail';
import { RawInput } from '../common/raw-input.decorator';
import { readSnsBody, type SnsHttpRequest } from './sns-body.reader';

export interface SesWebhookResponse {
  status: 'confirmed' | 'processed' | 'duplicate' | 'ignored';
}

/**
 * SNS HTTPS endpoint for SES bounce, complaint and delivery notifications. Every message is
 * signature-checked (403 when it is not genuine or current); a 2xx tells SNS not to redeliver, so
 * failures to record, and certificates that cannot be downloaded now (busy, unreachable), answer 5xx.
 */
@Controller('webhooks/ses')
export class SesNotificationsController {
  private readonly logger = new Logger(SesNotificationsController.name);

  constructor(
    private readonly verifier: SnsSignatureVerifier,
    private readonly feedback: SesFeedbackService,
  ) {}

  @Post()
  @HttpCode(200)
  @RawInput()
  async receive(@Req() request: SnsHttpRequest): Promise<SesWebhookResponse> {
    const message = await this.verify(await readSnsBody(request));
    switch (message.Type) {
      case 'SubscriptionConfirmation':
        await this.verifier.confirmSubscription(message).catch((error: unknown) => this.reject(error));
        return { status: 'confirmed' };
      case 'UnsubscribeConfirmation':
        this.logger.warn({ msg: 'SNS unsubscribed this endpoint', topicArn: message.TopicArn });
        return { status: 'ignored' };
      case 'Notification': {
        const outcome = await this.feedback.process(message);
        return { status: outcome.status };
      }
    }
  }

  private async verify(body: unknown): Promise<SnsMessage> {
    try {
      return await this.verifier.verify(body);
    } catch (error) {
      return this.reject(error);
    }
  }

  private reject(error: unknown): never {
    if (error instanceof SnsVerificationError) {
      this.logger.warn({ msg: 'SNS message rejected', reason: error.reason, detail: error.message });
      if (error.retryable) {
        throw new ServiceUnavailableException({
          statusCode: 503,
          message: 'SNS message not verified: try again later',
          reason: error.reason,
        });
      }
      throw new ForbiddenException({
        statusCode: 403,
        message: 'SNS message rejected',
        reason: error.reason,
      });
    }
    throw error;
  }
}
