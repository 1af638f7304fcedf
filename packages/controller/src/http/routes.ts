import { auditRoutes } from '../audit/routes.js';
import { deviceRoutes } from '../devices/routes.js';
import { enrollRoute, type EnrollOptions } from '../enrollment/enroll-route.js';
import { identityRoutes } from '../enrollment/identity-route.js';
import { enrollmentTokenRoutes } from '../enrollment/token-routes.js';
import { eventRoutes } from '../events/routes.js';
import { assignmentRoutes } from '../groups/assignment-routes.js';
import { groupRoutes } from '../groups/routes.js';
import { quarantineRoutes } from '../ingest/quarantine-routes.js';
import { pinRoutes } from '../pins/routes.js';
import { serviceRoutes } from '../services/routes.js';
import { tokenRoutes } from '../tokens/routes.js';
import type { RoutePlugin } from './app.js';

export interface ApiOptions {
  /** Credential issuers and the rate limit of POST /v1/enroll. */
  enroll?: EnrollOptions;
}

/** Every /v1 route plugin of the operator API, for buildApp. */
export function apiRoutes(options: ApiOptions = {}): RoutePlugin[] {
  return [
    deviceRoutes,
    groupRoutes,
    assignmentRoutes,
    serviceRoutes,
    pinRoutes,
    eventRoutes,
    quarantineRoutes,
    tokenRoutes,
    enrollmentTokenRoutes,
    enrollRoute(options.enroll),
    identityRoutes,
    auditRoutes,
  ];
}

/** The API as `podfleet serve` runs it until enrollment brings its credential issuers. */
export const allRoutes: RoutePlugin[] = apiRoutes();
