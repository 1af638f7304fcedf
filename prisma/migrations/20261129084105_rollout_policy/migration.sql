-- AlterEnum
ALTER TYPE "rollout_device_state" ADD VALUE 'deferred';

-- AlterTable
ALTER TABLE "rollout_devices" ADD COLUMN     "active_since_at_ready" TIMESTAMPTZ(3),
ADD COLUMN     "failure_journal" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "failure_reason" TEXT,
ADD COLUMN     "failure_unit" TEXT,
ADD COLUMN     "hold" TEXT,
ADD COLUMN     "ready_seen_at" TIMESTAMPTZ(3),
ADD COLUMN     "report_at_ready" TIMESTAMPTZ(3),
ADD COLUMN     "restarts_at_ready" INTEGER;

-- AlterTable
ALTER TABLE "rollouts" DROP COLUMN "batch_finished_at",
ADD COLUMN     "approved_batches" INTEGER[] DEFAULT ARRAY[]::INTEGER[],
ADD COLUMN     "previous_batch_done_at" TIMESTAMPTZ(3),
ADD COLUMN     "waiting" TEXT[] DEFAULT ARRAY[]::TEXT[];
