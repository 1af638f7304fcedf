import { describe, expect, it } from 'vitest';
import { describeDrift } from './drift.js';
import { modelTablesOf } from './schema-names.js';

const schema = `
/// A device.
model Device {
  id        String    @id
  lastSeen  DateTime? @map("last_seen") // comment
  events    DeviceEvent[]

  @@map("devices")
}

model Note {
  id Int @id
}

enum ApiRole {
  admin
  viewer

  @@map("api_role")
}
`;

describe('modelTablesOf', () => {
  it('maps tables to models and columns to fields, following @@map and @map', () => {
    const tables = modelTablesOf(schema);

    expect([...tables.keys()]).toEqual(['devices', 'Note', 'api_role']);
    expect(tables.get('devices')?.model).toBe('model Device');
    expect(tables.get('devices')?.fields.get('last_seen')).toBe('lastSeen');
    expect(tables.get('api_role')?.fields.get('viewer')).toBe('viewer');
  });
});

describe('describeDrift', () => {
  it('is empty when the engine found nothing', () => {
    expect(describeDrift('', schema)).toEqual([]);
  });

  it("puts the model and field beside each of the engine's changes", () => {
    // As the schema engine prints it (prisma migrate diff without --script).
    const summary = `
[+] Added enums
  - api_role

[+] Added tables
  - Note

[-] Removed tables
  - legacy

[*] Changed the \`devices\` table
  [+] Added column \`last_seen\`
  [-] Removed index on columns (id)

[*] Changed the \`api_role\` enum
  [+] Added variant \`viewer\`
`;

    expect(describeDrift(summary, schema)).toEqual([
      'enum ApiRole (api_role): [+] Added enum',
      'model Note (Note): [+] Added table',
      'table legacy: [-] Removed table',
      'model Device.lastSeen (devices.last_seen): [+] Added column `last_seen`',
      'model Device (devices): [-] Removed index on columns (id)',
      'enum ApiRole.viewer (api_role.viewer): [+] Added variant `viewer`',
    ]);
  });
});
