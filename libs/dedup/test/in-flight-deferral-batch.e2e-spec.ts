import { describeInFlightDeferral } from './support/in-flight-deferral.scenario';

// Issue #10 item 7, batch handlers: see the scenario.
describeInFlightDeferral('batch');
