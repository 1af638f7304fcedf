-- AlterTable
ALTER TABLE "devices" ADD COLUMN     "desired_hash" TEXT;
