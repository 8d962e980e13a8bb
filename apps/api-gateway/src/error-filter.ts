import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { EnvelopeException, ErrorEnvelopeFilter } from '@flowruns/platform';
import { InvalidCursorError } from '@flowruns/run-views';

/** The shared envelope filter, plus what only the gateway knows: a refused cursor is the client's 400. */
@Catch()
export class GatewayErrorFilter implements ExceptionFilter {
  private readonly inner = new ErrorEnvelopeFilter();

  catch(exception: unknown, host: ArgumentsHost): void {
    this.inner.catch(
      exception instanceof InvalidCursorError
        ? EnvelopeException.of('VALIDATION', { field: 'cursor', message: exception.message })
        : exception,
      host,
    );
  }
}
