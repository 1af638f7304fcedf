import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from 'commander';
import { DeviceId, generateSigningKey } from '@podfleet/shared';
import { CliError } from './io.js';

const LABEL = /^[a-z0-9A-Z]([a-zA-Z0-9._-]{0,62})?$/;

export function parseCount(value: string): number {
  const count = Number(value);
  if (!/^\d+$/.test(value) || count < 1 || count > 100_000) {
    throw new InvalidArgumentError('must be a whole number from 1 to 100000');
  }
  return count;
}

export function parseRate(value: string): number {
  const rate = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || rate > 1) {
    throw new InvalidArgumentError('must be a share from 0 to 1, like 0.1');
  }
  return rate;
}

export function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!/^\d*\.?\d+$/.test(value)) throw new InvalidArgumentError('must be seconds, like 2 or 0.5');
  return seconds;
}

/** `k=v,k2=v2`: the labels every simulated device carries. */
export function parseLabels(value: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of value.split(',').filter(Boolean)) {
    const [key, text, ...rest] = pair.split('=');
    if (rest.length > 0 || !key || text === undefined || !LABEL.test(key)) {
      throw new InvalidArgumentError(`not k=v: ${JSON.stringify(pair)}`);
    }
    if (text !== '' && !LABEL.test(text)) {
      throw new InvalidArgumentError(`${key}: not a label value: ${JSON.stringify(text)}`);
    }
    labels[key] = text;
  }
  return labels;
}

export function parsePrefix(value: string): string {
  if (!DeviceId.safeParse(`${value}-0000`).success || value.length > 100) {
    throw new InvalidArgumentError('must be letters, digits, dot, dash or underscore');
  }
  return value;
}

export function parseBrokerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('not a URL');
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new InvalidArgumentError('must be mqtt://, mqtts://, ws:// or wss://');
  }
  return value;
}

/** The controller public keys in a PEM file (several blocks while a key is rotated). */
export async function readPublicKeys(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`--key: cannot read ${path} (${(error as NodeJS.ErrnoException).code})`);
  }
  const keys = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (keys.length === 0) throw new CliError(`--key: ${path}: no PEM public key in it`);
  return keys.map((key) => `${key}\n`);
}

/**
 * Broker passwords by device id from a JSON file (`{"sim-0000": "…", …}`, as enrollment issues
 * them); errors name the file and the entry.
 */
export async function readCredentials(path: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(
      `--credentials: cannot read ${path} (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(`--credentials: ${path}: not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CliError(`--credentials: ${path}: must be an object of device id → password`);
  }
  const passwords = new Map<string, string>();
  for (const [id, password] of Object.entries(parsed)) {
    if (typeof password !== 'string' || password === '') {
      throw new CliError(`--credentials: ${path}: ${id}: password must be a non-empty string`);
    }
    passwords.set(id, password);
  }
  return passwords;
}

/** Without --key: a fresh signing key; the caller says where its private half is. */
export function newSimKey(): { publicKeyPem: string; privateKeyPem: string } {
  return generateSigningKey();
}
