-- DropIndex
DROP INDEX "device_events_at_id_idx";

-- DropIndex
DROP INDEX "device_events_device_id_at_id_idx";

-- AlterTable
ALTER TABLE "devices" ADD COLUMN     "state_received_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "quarantined_messages" (
    "id" BIGSERIAL NOT NULL,
    "device_id" TEXT,
    "topic" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "excerpt" TEXT NOT NULL,
    "payload_bytes" INTEGER NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "quarantined_messages_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "quarantined_messages_device_id_id_idx" ON "quarantined_messages"("device_id", "id");

-- CreateIndex
CREATE INDEX "device_events_device_id_received_at_id_idx" ON "device_events"("device_id", "received_at", "id");

-- CreateIndex
CREATE INDEX "device_events_received_at_id_idx" ON "device_events"("received_at", "id");

-- Times a device's clock put in the future, before liveness was dated by the controller's clock:
-- GREATEST(last_seen, …) would otherwise keep them for good.
UPDATE "devices" SET "last_seen" = now() WHERE "last_seen" > now();
UPDATE "devices" SET "online_since" = now() WHERE "online_since" > now();
