import { CreateTrackingClicks1763930000000 } from './migrations/1763930000000-create-tracking-clicks.migration';
import { AddTrackingClickId1764950000000 } from './migrations/1764950000000-add-tracking-click-id.migration';
import { TrackingClick } from './tracking-click.entity';

/** Entities and migrations owned by the tracking lib. */
export const TRACKING_ENTITIES = [TrackingClick];
export const TRACKING_MIGRATIONS = [CreateTrackingClicks1763930000000, AddTrackingClickId1764950000000];
