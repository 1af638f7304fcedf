-- CreateEnum
CREATE TYPE "rollout_state" AS ENUM ('pending', 'running', 'paused', 'succeeded', 'failed', 'aborted', 'rolling_back', 'rolled_back');

-- CreateEnum
CREATE TYPE "rollout_device_state" AS ENUM ('pending', 'updating', 'succeeded', 'failed', 'skipped', 'reverting', 'reverted');

-- AlterTable
ALTER TABLE "devices" ADD COLUMN     "online_since" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "rollouts" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "service" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "target_image" TEXT NOT NULL,
    "state" "rollout_state" NOT NULL DEFAULT 'pending',
    "reason" TEXT,
    "batch_count" INTEGER NOT NULL,
    "current_batch" INTEGER NOT NULL DEFAULT 0,
    "batch_started_at" TIMESTAMPTZ(3),
    "batch_finished_at" TIMESTAMPTZ(3),
    "accepted_failures" INTEGER NOT NULL DEFAULT 0,
    "awaiting_approval" BOOLEAN NOT NULL DEFAULT false,
    "absorbed" BOOLEAN NOT NULL DEFAULT false,
    "excluded" JSONB NOT NULL DEFAULT '[]',
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rollouts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rollout_devices" (
    "rollout_id" UUID NOT NULL,
    "device_id" TEXT NOT NULL,
    "batch" INTEGER NOT NULL,
    "from_image" TEXT NOT NULL,
    "to_image" TEXT NOT NULL,
    "over_group_pin" BOOLEAN NOT NULL DEFAULT false,
    "state" "rollout_device_state" NOT NULL DEFAULT 'pending',
    "reason" TEXT,
    "switched_at" TIMESTAMPTZ(3),
    "target_generation" INTEGER,
    "revert_generation" INTEGER,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rollout_devices_pkey" PRIMARY KEY ("rollout_id","device_id")
);

-- CreateIndex
CREATE INDEX "rollouts_state_idx" ON "rollouts"("state");

-- CreateIndex
CREATE INDEX "rollouts_service_created_at_idx" ON "rollouts"("service", "created_at");

-- CreateIndex
CREATE INDEX "rollout_devices_device_id_idx" ON "rollout_devices"("device_id");

-- CreateIndex
CREATE INDEX "rollout_devices_rollout_id_batch_idx" ON "rollout_devices"("rollout_id", "batch");

-- AddForeignKey
ALTER TABLE "rollout_devices" ADD CONSTRAINT "rollout_devices_rollout_id_fkey" FOREIGN KEY ("rollout_id") REFERENCES "rollouts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rollout_devices" ADD CONSTRAINT "rollout_devices_device_id_fkey" FOREIGN KEY ("device_id") REFERENCES "devices"("id") ON DELETE CASCADE ON UPDATE CASCADE;
