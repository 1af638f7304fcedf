-- CreateTable
CREATE TABLE "broker_share_group" (
    "slot" INTEGER NOT NULL DEFAULT 1,
    "name" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "broker_share_group_pkey" PRIMARY KEY ("slot")
);
