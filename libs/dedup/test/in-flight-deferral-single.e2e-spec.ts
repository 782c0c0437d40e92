import { describeInFlightDeferral } from './support/in-flight-deferral.scenario';

// Issue #10 item 7, single handlers: see the scenario.
describeInFlightDeferral('single');
