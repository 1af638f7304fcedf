-- Failures an operator resumed over are remembered per device, not as a count on the rollout: a
-- count discounted later failures of another batch, wherever they happened.
ALTER TABLE "rollout_devices" ADD COLUMN "accepted_failure" BOOLEAN NOT NULL DEFAULT false;

-- A rollout resumed over failures before this migration: its devices failed now are the ones it
-- accepted, or failed after the resume (the count cannot tell them apart; accepting them is what
-- the count did for up to that many).
UPDATE "rollout_devices" rd SET "accepted_failure" = true
  FROM "rollouts" r
  WHERE r."id" = rd."rollout_id" AND r."accepted_failures" > 0 AND rd."state" = 'failed';

ALTER TABLE "rollouts" DROP COLUMN "accepted_failures";
